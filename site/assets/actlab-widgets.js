// Loaded before the Jupyter widgets HTML manager on pages that embed widgets.
(function () {
  // 1. ipywidgets' Play button uses Font Awesome <i> icons; ask the theme's
  //    Font Awesome script to nest its SVG inside them rather than replace the
  //    element, which otherwise makes the widget code throw when it updates.
  window.FontAwesomeConfig = { autoReplaceSvg: "nest" };

  // 2. The widget manager finds its icon fonts next to its own module, whose
  //    address RequireJS derives from the module name: map that name to the
  //    vendored copy (RequireJS reads a global `require` object as its config).
  var here = document.currentScript && document.currentScript.src;
  if (here) {
    var assets = here.slice(0, here.lastIndexOf("/") + 1);
    window.require = {
      paths: { "@jupyter-widgets/html-manager/dist": assets + "html-manager" },
    };
  }

  // 3. The widget manager typesets labels with the MathJax 2 API
  //    (MathJax.Hub.Queue); the book loads MathJax 3. Translate the call.
  document.addEventListener("DOMContentLoaded", function () {
    var mj = window.MathJax;
    if (!mj || mj.Hub) return;
    mj.Hub = {
      Queue: function () {
        var elements = [];
        Array.prototype.forEach.call(arguments, function (item) {
          (Array.isArray(item) ? item : [item]).forEach(function (x) {
            if (x instanceof Element) elements.push(x);
          });
        });
        if (elements.length && mj.typesetPromise) {
          mj.typesetPromise(elements).catch(function () {});
        }
      },
    };
  });
  // 4. Explorers (actlab.explorer): each frame is an <img> with alt text, and
  //    a live region (.actlab-frame-text, aria-live) under the frames repeats
  //    the shown frame's description. The controls switch frames in the
  //    browser, with no kernel: keep the region's text in step with the frame
  //    that is visible, so a screen reader announces each change.
  function visibleFrame(explorer) {
    var frames = explorer.querySelectorAll("img.actlab-frame");
    for (var i = 0; i < frames.length; i++) {
      if (frames[i].offsetParent !== null && frames[i].getBoundingClientRect().height > 0) {
        return frames[i];
      }
    }
    return null;
  }
  function syncExplorers() {
    document.querySelectorAll(".actlab-static").forEach(function (explorer) {
      var region = explorer.querySelector(".actlab-frame-text");
      var frame = visibleFrame(explorer);
      if (region && frame && region.textContent !== frame.alt) {
        region.textContent = frame.alt;
      }
    });
  }
  var pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () {
      pending = false;
      syncExplorers();
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    new MutationObserver(schedule).observe(document.body, {
      subtree: true,
      childList: true,
      attributes: true,
      attributeFilter: ["class", "style", "hidden"],
    });
  });
})();
