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
})();
