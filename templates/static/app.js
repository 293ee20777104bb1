// Mesa dashboard client script. Vanilla, no libraries, no eval, no inline handlers:
// everything is wired here with addEventListener (the page CSP is `script-src 'self'`).
// Pages work without it; this file only adds themes, the palette, shortcuts, toasts,
// log autoscroll (and the live log kept whole), confirmations, and the live channel's care in
// the back/forward cache.
// Loaded with `defer`, so the DOM is parsed already.
(function () {
  "use strict";
  var root = document.documentElement;

  // Controls that need this script ([data-js-only]) start hidden; show them now.
  document.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });
  if (/Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent)) {
    document.querySelectorAll("[data-mod-key]").forEach(function (k) { k.textContent = "\u2318K"; });
  }

  // ---------------------------------------------------------------- 1. Theme
  // localStorage `mesa-theme` = system | light | dark. "system" removes data-theme so
  // the CSS follows prefers-color-scheme.
  // Without a stored choice we keep whatever the server rendered (it may read the
  // mesa-theme cookie), so there is no flash of the wrong theme.
  var THEMES = ["system", "light", "dark"];
  function storedTheme() {
    var t = null;
    try { t = localStorage.getItem("mesa-theme"); } catch (e) { /* storage disabled */ }
    if (THEMES.indexOf(t) >= 0) { return t; }
    return THEMES.indexOf(root.dataset.theme) >= 0 ? root.dataset.theme : "system";
  }
  function applyTheme(theme) {
    if (theme === "system") { delete root.dataset.theme; } else { root.dataset.theme = theme; }
    var next = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length];
    document.querySelectorAll("[data-theme-toggle]").forEach(function (btn) {
      btn.setAttribute("aria-label", "Theme: " + theme + " (switch to " + next + ")");
      btn.title = "Theme: " + theme;
      var label = btn.querySelector(".theme-label");
      if (label) { label.textContent = "Theme: " + theme; }
    });
  }
  applyTheme(storedTheme());
  document.addEventListener("click", function (ev) {
    if (!ev.target.closest("[data-theme-toggle]")) { return; }
    var cur = storedTheme();
    var next = THEMES[(THEMES.indexOf(cur) + 1) % THEMES.length];
    try { localStorage.setItem("mesa-theme", next); } catch (e) { /* private mode: session only */ }
    // mirrored in a cookie so the server may render data-theme up front (no flash)
    document.cookie = "mesa-theme=" + next + "; path=/; max-age=31536000; SameSite=Strict";
    applyTheme(next);
  });

  // ---------------------------------------------------------------- 2. Mobile navigation
  // The menu button is a link to #sidebar (works without JS through :target); with JS it
  // toggles a class instead so the page does not jump.
  function setNav(open) {
    root.classList.toggle("nav-open", open);
    document.querySelectorAll("[data-nav-toggle]").forEach(function (b) {
      b.setAttribute("aria-expanded", open ? "true" : "false");
    });
    if (open) { var first = document.querySelector("#sidebar a"); if (first) { first.focus(); } }
  }
  document.addEventListener("click", function (ev) {
    var t = ev.target.closest("[data-nav-toggle], [data-nav-close]");
    if (t) { ev.preventDefault(); setNav(!!t.hasAttribute("data-nav-toggle") && !root.classList.contains("nav-open")); return; }
    // a click on the backdrop (outside the open drawer) closes it
    if (root.classList.contains("nav-open") && !ev.target.closest("#sidebar")) { setNav(false); }
  });

  // ---------------------------------------------------------------- 3. Command palette
  // The input fetches /palette?q= into #palette-results (HTMX). Results are links (and,
  // when a query is typed, a #palette-create form "Create issue <q>"). Modes: "search"
  // (Enter opens the selected or first link) and "create" (Enter submits #palette-create).
  var palette = document.getElementById("palette");
  var ITEMS = "#palette-results a, #palette-results button";
  function paletteInput() { return palette && palette.querySelector("input[name=q]"); }
  function openPalette(mode) {
    if (!palette) { return false; }
    var input = paletteInput();
    palette.dataset.mode = mode;
    if (input) {
      if (!input.dataset.placeholder) { input.dataset.placeholder = input.placeholder; }
      input.placeholder = mode === "create" ? "New issue title, then Enter" : input.dataset.placeholder;
    }
    if (!palette.open) { palette.showModal(); }
    if (input) { input.focus(); input.select(); }
    return true;
  }
  function items() { return Array.prototype.slice.call(document.querySelectorAll(ITEMS)); }
  // delta 0 clears the selection (after new results arrive)
  function moveSelection(delta) {
    var list = items();
    var i = list.findIndex(function (a) { return a.classList.contains("active"); });
    if (delta === 0) { i = -1; }
    else if (i < 0) { i = delta > 0 ? 0 : list.length - 1; }
    else { i = (i + delta + list.length) % list.length; }
    list.forEach(function (a, j) {
      a.classList.toggle("active", j === i);
      if (j === i) { a.setAttribute("aria-current", "true"); } else { a.removeAttribute("aria-current"); }
    });
    if (list[i]) { list[i].scrollIntoView({ block: "nearest" }); }
  }
  function paletteEnter() {
    var active = document.querySelector("#palette-results .active");
    var create = document.getElementById("palette-create");
    if (active) { active.click(); return; }
    if (palette.dataset.mode === "create") {
      if (create) { create.requestSubmit(); } else { window.location.assign("/issues/new"); }
      return;
    }
    var first = document.querySelector("#palette-results a");
    if (first) { first.click(); }
  }
  if (palette) {
    palette.addEventListener("keydown", function (ev) {
      if (ev.key === "ArrowDown") { ev.preventDefault(); moveSelection(1); }
      else if (ev.key === "ArrowUp") { ev.preventDefault(); moveSelection(-1); }
      else if (ev.key === "Enter" && ev.target === paletteInput()) { ev.preventDefault(); paletteEnter(); }
      else if (ev.key === "Escape") { ev.preventDefault(); palette.close(); }
    });
    palette.addEventListener("htmx:afterSwap", function () { moveSelection(0); });
    // clicking the backdrop (the dialog element itself) closes it
    palette.addEventListener("click", function (ev) { if (ev.target === palette) { palette.close(); } });
  }
  document.addEventListener("click", function (ev) {
    var opener = ev.target.closest("[data-palette-open]");
    if (opener && openPalette(opener.getAttribute("data-palette-open") || "search")) { ev.preventDefault(); }
  });

  // ---------------------------------------------------------------- 4. Keyboard shortcuts
  function openShortcuts() {
    var help = document.getElementById("shortcuts");
    if (!help) { return false; }
    if (!help.open) { help.showModal(); }
    return true;
  }
  document.addEventListener("click", function (ev) {
    if (ev.target.closest("[data-shortcuts-open]") && openShortcuts()) { ev.preventDefault(); setNav(false); }
  });
  var GO = { d: "/", i: "/issues", a: "/agents", r: "/runs", b: "/blocks", s: "/strategy",
    p: "/approvals", w: "/wiki", v: "/activity", c: "/costs", t: "/settings" };
  var pendingG = 0; // timestamp of a pending "g" prefix
  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }
  document.addEventListener("keydown", function (ev) {
    // Cmd/Ctrl+K works everywhere, even while typing.
    if ((ev.metaKey || ev.ctrlKey) && !ev.altKey && (ev.key || "").toLowerCase() === "k") {
      ev.preventDefault();
      if (palette && palette.open) { palette.close(); } else { openPalette("search"); }
      return;
    }
    if (ev.key === "Escape" && root.classList.contains("nav-open")) { setNav(false); return; }
    if (ev.metaKey || ev.ctrlKey || ev.altKey || ev.defaultPrevented || typing(ev.target)) { return; }
    if (document.querySelector("dialog[open]")) { return; }
    var key = ev.key;
    if (pendingG && Date.now() - pendingG < 1500) {
      pendingG = 0;
      if (Object.prototype.hasOwnProperty.call(GO, key)) { ev.preventDefault(); window.location.assign(GO[key]); }
      return;
    }
    if (key === "g") { pendingG = Date.now(); return; }
    if (key === "/") { ev.preventDefault(); openPalette("search"); }
    else if (key === "c") {
      ev.preventDefault();
      if (!openPalette("create")) { window.location.assign("/issues/new"); }
    } else if (key === "?") {
        if (openShortcuts()) { ev.preventDefault(); }
    }
  });

  // ---------------------------------------------------------------- 5. Toasts
  // Anything appended to #toasts (SSE swaps them in) disappears after 6 s; a close button
  // is added when the server did not send one.
  var toasts = document.getElementById("toasts");
  function dismiss(el) {
    if (!el.parentNode) { return; }
    el.classList.add("leaving");
    setTimeout(function () { if (el.parentNode) { el.parentNode.removeChild(el); } }, 220);
  }
  function armToast(el) {
    if (el.nodeType !== 1 || el.dataset.armed) { return; }
    el.dataset.armed = "1";
    if (!el.querySelector("[data-dismiss]")) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "btn btn-ghost btn-sm btn-icon toast-close";
      b.setAttribute("data-dismiss", "");
      b.setAttribute("aria-label", "Dismiss notification");
      b.textContent = "\u00d7";
      el.appendChild(b);
    }
    var timer = setTimeout(function () { dismiss(el); }, 6000);
    // keep it while the pointer or focus is on it
    el.addEventListener("mouseenter", function () { clearTimeout(timer); });
    el.addEventListener("focusin", function () { clearTimeout(timer); });
    el.addEventListener("mouseleave", function () { timer = setTimeout(function () { dismiss(el); }, 3000); });
  }
  if (toasts) {
    Array.prototype.forEach.call(toasts.children, armToast);
    new MutationObserver(function (records) {
      records.forEach(function (r) { Array.prototype.forEach.call(r.addedNodes, armToast); });
    }).observe(toasts, { childList: true });
    toasts.addEventListener("click", function (ev) {
      var b = ev.target.closest("[data-dismiss]");
      if (b) { var t = b.closest("#toasts > *"); if (t) { dismiss(t); } }
    });
  }

  // ---------------------------------------------------------------- 6. Log autoscroll
  // [data-autoscroll] stays pinned to the bottom as lines arrive, unless the user has
  // scrolled up; scrolling back to the bottom re-pins it.
  // Scrollable code panels must be reachable by keyboard (axe: scrollable-region-focusable).
  function focusable(scope) {
    scope.querySelectorAll(".log, .diff").forEach(function (el) {
      if (!el.hasAttribute("tabindex")) { el.tabIndex = 0; }
    });
  }
  focusable(document);
  function pinned(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 24; }
  function watchLog(el) {
    if (el.dataset.autoscrollArmed) { return; }
    el.dataset.autoscrollArmed = "1";
    var stick = true;
    el.scrollTop = el.scrollHeight;
    el.addEventListener("scroll", function () { stick = pinned(el); }, { passive: true });
    new MutationObserver(function () { if (stick) { el.scrollTop = el.scrollHeight; } })
      .observe(el, { childList: true, subtree: true, characterData: true });
  }
  document.querySelectorAll("[data-autoscroll]").forEach(watchLog);
  document.addEventListener("htmx:load", function (ev) {
    var el = ev.detail && ev.detail.elt;
    if (!el || !el.querySelectorAll) { return; }
    focusable(el.parentNode || el);
    if (el.matches("[data-autoscroll]")) { watchLog(el); }
    el.querySelectorAll("[data-autoscroll]").forEach(watchLog);
  });

  // ---------------------------------------------------------------- 7. Confirmations
  // <form data-confirm="Delete this?"> asks before a plain submit; with hx-post/hx-delete
  // HTMX fires htmx:confirm first and we hold the request until the user agrees.
  function confirmText(el) {
    var holder = el && el.closest && el.closest("[data-confirm]");
    return holder ? (holder.getAttribute("data-confirm") || "Are you sure?") : null;
  }
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form.hasAttribute("hx-post") || form.hasAttribute("hx-put") || form.hasAttribute("hx-delete") || form.hasAttribute("hx-patch")) { return; }
    var text = confirmText(form);
    if (text && !window.confirm(text)) { ev.preventDefault(); }
  }, true);
  document.addEventListener("htmx:confirm", function (ev) {
    var text = confirmText(ev.detail.elt);
    if (!text) { return; }
    ev.preventDefault();
    if (window.confirm(text)) { ev.detail.issueRequest(true); }
  });

  // ---------------------------------------------------------------- 8. Back/forward cache
  // A page kept in the back/forward cache keeps its /ui/events stream open (Chromium does
  // not close it), and a few such pages use up the browser's connections to this host
  // (six over HTTP/1.1): the next page load then waits forever. So the stream is closed when
  // the page is hidden, and a page shown again from the cache, having missed its live
  // updates, is reloaded.
  window.addEventListener("pagehide", function () {
    var data = document.body && document.body["htmx-internal-data"];
    if (data && data.sseEventSource) { data.sseEventSource.close(); }
  });
  window.addEventListener("pageshow", function (ev) {
    if (ev.persisted) { window.location.reload(); }
  });

  // ---------------------------------------------------------------- 9. Live run log
  // A running run's page has a stored part (#run-log-region), fetched again when the live
  // channel opens (output printed before it opened is not replayed over it), and a live part
  // (#run-log-live) that the channel appends to and that is never replaced, so no output can
  // be lost however the fetch and the channel interleave. After a fetch, the pieces at the
  // head of the live part that the stored part now shows are dropped, so nothing shows twice.
  // Dropped are the longest run of leading pieces that the stored part ends with (whitespace
  // aside), so a line that merely repeats an older one is kept.
  function textOf(node) { return (node && node.textContent) || ""; }
  function squash(text) { return text.replace(/\s+/g, " ").trim(); }
  document.addEventListener("htmx:afterSettle", function () {
    var region = document.getElementById("run-log-region");
    var live = document.getElementById("run-log-live");
    if (!region || !live || region.dataset.liveChecked) { return; }
    region.dataset.liveChecked = "1";
    var shown = squash(textOf(region));
    var pieces = live.childNodes;
    var drop = 0;
    var head = "";
    for (var k = 0; k < pieces.length; k++) {
      head += textOf(pieces[k]);
      var h = squash(head);
      if (h && h.length <= shown.length && shown.slice(shown.length - h.length) === h) { drop = k + 1; }
    }
    while (drop-- > 0) { live.removeChild(live.firstChild); }
  });
})();
