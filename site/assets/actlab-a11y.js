// Accessibility mends for markup the theme and the widget manager build in the
// browser (the page bodies are mended at build time by scripts/actlab_a11y.py).
(function () {
  // Label in name (WCAG 2.5.3): the theme's search field button reads "Search
  // Ctrl+K" but is named "Search"; let its visible text name it.
  function mendTheme() {
    document.querySelectorAll(".search-button-field[aria-label]").forEach(function (b) {
      if (b.textContent.trim()) b.removeAttribute("aria-label");
    });
    // The colour-mode button's icons carry titles ("Light", "Dark") that are
    // not in its name: the icons are decoration, the button says what it does.
    // Font Awesome may have turned them into <svg> with a <title> already.
    document.querySelectorAll(".theme-switch-button").forEach(function (b) {
      b.querySelectorAll("i, svg").forEach(function (icon) {
        icon.removeAttribute("title");
        if (icon.getAttribute("aria-hidden") !== "true") icon.setAttribute("aria-hidden", "true");
      });
      b.querySelectorAll("svg title").forEach(function (t) {
        t.remove();
      });
    });
  }

  // Explorer controls: a slider handle is named by the control's visible label
  // and announces the value shown in its readout, not the option's index; a
  // group of toggle buttons is a labelled group that the arrow keys move in.
  var nextId = 0;
  function labelId(label) {
    if (!label.id) label.id = "actlab-control-label-" + nextId++;
    return label.id;
  }
  function mendControls() {
    document.querySelectorAll(".actlab-explorer .widget-slider").forEach(function (w) {
      var label = w.querySelector(".widget-label");
      var handle = w.querySelector(".noUi-handle");
      var readout = w.querySelector(".widget-readout");
      if (!handle) return;
      if (label && label.textContent.trim() && !handle.getAttribute("aria-labelledby")) {
        handle.setAttribute("aria-labelledby", labelId(label));
      }
      var text = readout ? readout.textContent.trim() : "";
      if (text && handle.getAttribute("aria-valuetext") !== text) {
        handle.setAttribute("aria-valuetext", text);
      }
    });
    document.querySelectorAll(".actlab-explorer .widget-toggle-buttons").forEach(function (w) {
      var label = w.querySelector(".widget-label");
      var group = w.querySelector(".widget-toggle-button") && w.querySelector(".widget-toggle-button").parentElement;
      if (!group || group.getAttribute("role") === "group") return;
      group.setAttribute("role", "group");
      if (label && label.textContent.trim()) group.setAttribute("aria-labelledby", labelId(label));
      group.addEventListener("keydown", function (e) {
        if (["ArrowRight", "ArrowDown", "ArrowLeft", "ArrowUp"].indexOf(e.key) < 0) return;
        var buttons = Array.prototype.slice.call(group.querySelectorAll(".widget-toggle-button"));
        var at = buttons.indexOf(document.activeElement);
        if (at < 0) return;
        var step = e.key === "ArrowRight" || e.key === "ArrowDown" ? 1 : -1;
        var next = buttons[(at + step + buttons.length) % buttons.length];
        e.preventDefault();
        next.click();
        next.focus();
      });
    });
  }

  // Explorers (actlab.explorer): each frame is an <img> with alt text, and
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
      mendTheme();
      mendControls();
      syncExplorers();
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    schedule();
    new MutationObserver(schedule).observe(document.body, {
      subtree: true,
      childList: true,
      characterData: true,
      attributes: true,
      attributeFilter: ["aria-valuetext", "aria-label", "title", "class", "style", "hidden"],
    });
  });
})();
