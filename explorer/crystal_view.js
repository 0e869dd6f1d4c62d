// Draws periodic crystals into 3Dmol viewers; inlined into each view's HTML by explorer/viewer.py.
// Conventions as in diffusion/crystal.py: lattice rows are the vectors a, b, c (angstrom),
// Cartesian = frac @ lattice. A frame is {L: [9], F: [3n], Z: [n], M: [n] or null, I: image set}.
// An image set {R: [3n], T: [n][3][...]} is a reference frame's wrapped coordinates and, per atom
// and axis, the whole-cell translations of its drawn copies (explorer/viewer.py, image_positions,
// is the same rule in Python and is what the tests check).
//
// Following a slider: with data.follow set, the view shows the frame whose step t is
//  1. the value of the page's slider whose label starts with data.followSlider (read from the
//     parent document: the iframe is same-origin), so the crystal moves while the slider is
//     dragged, with no round trip to the server; or, if that slider cannot be found,
//  2. the page URL's query parameter data.follow (the page's script writes ?t=<step>).
// Either way the frame is redrawn in place: the iframe, 3Dmol.js and WebGL are never reloaded.

// Antialiasing costs ~10x per frame under software WebGL (SwiftShader, e.g. headless or no GPU):
// keep it for real GPUs only. Hoisted, so py3Dmol's createViewer call can use it.
function crystalViewHardwareGL() {
  if (window.__crystalViewHardwareGL !== undefined) return window.__crystalViewHardwareGL;
  var hardware = true;
  try {
    var gl = document.createElement("canvas").getContext("webgl");
    var info = gl && gl.getExtension("WEBGL_debug_renderer_info");
    var name = info ? String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL)) : "";
    hardware = !/swiftshader|llvmpipe|software/i.test(name);
    var lose = gl && gl.getExtension("WEBGL_lose_context");
    if (lose) lose.loseContext();
  } catch (e) {}
  window.__crystalViewHardwareGL = hardware;
  return hardware;
}

function crystalView(viewers, data, wrap) {
  var AXIS = ["#d62728", "#2ca02c", "#1f77b4"];
  var UNDECIDED = "#505050";  // dark grey: darker than every element colour of the VESTA scheme
  var legend = wrap ? wrap.querySelector(".legend") : null;
  var tools = wrap ? wrap.querySelector(".tools") : null;
  var imagesKey = "crystal-diffusion-images-" + data.group;
  var showImages = true;
  try { showImages = window.sessionStorage.getItem(imagesKey) !== "off"; } catch (e) {}
  try {  // projector mode of the page (?projector=1): larger legend
    if (new URLSearchParams(window.parent.location.search).get("projector") === "1") document.body.classList.add("projector");
  } catch (e) {}

  function cart(f, L) {
    return {x: f[0] * L[0] + f[1] * L[3] + f[2] * L[6],
            y: f[0] * L[1] + f[1] * L[4] + f[2] * L[7],
            z: f[0] * L[2] + f[1] * L[5] + f[2] * L[8]};
  }
  function outside(p, size) { return Math.max(0, -p) + Math.max(0, p - size); }

  // positions (in supercell fractions) of every drawn copy of atom i: at its periodic image nearest
  // the reference, then per axis the whole set moved by the cells that keep it most inside
  function images(frame, i, sc) {
    var set = data.imageSets[frame.I], perAxis = [];
    for (var a = 0; a < 3; a++) {
      var r = set.R[3 * i + a], f = frame.F[3 * i + a], d = f - r;
      var u = r + (d - Math.round(d));
      var shifts = showImages ? set.T[i][a] : [];
      if (!showImages) for (var j = 0; j < sc[a]; j++) shifts.push(j);
      var best = 0, bestCost = Infinity;
      [0, -1, 1, -2, 2].forEach(function (n) {
        var cost = 0;
        shifts.forEach(function (s) { cost += outside(u + n + s, sc[a]); });
        if (cost < bestCost - 1e-12) { bestCost = cost; best = n; }
      });
      perAxis.push(shifts.map(function (s) { return (u + best + s) / sc[a]; }));
    }
    var out = [];
    perAxis[0].forEach(function (x) { perAxis[1].forEach(function (y) { perAxis[2].forEach(function (z) { out.push([x, y, z]); }); }); });
    return out;
  }

  function hasCopies() {  // does any atom get more than one copy per cell of the supercell?
    return data.imageSets.some(function (set) {
      return set.T.some(function (axes) { return axes.some(function (t, a) { return t.length > data.supercell[a]; }); });
    });
  }

  function scaled(L, sc) {
    return [L[0] * sc[0], L[1] * sc[0], L[2] * sc[0], L[3] * sc[1], L[4] * sc[1], L[5] * sc[1],
            L[6] * sc[2], L[7] * sc[2], L[8] * sc[2]];
  }

  function drawCell(viewer, L, sc, color, radius, dashed, axes) {
    var boxes = (sc[0] * sc[1] * sc[2] > 1) ? [[scaled(L, sc), "#bbbbbb", radius * 0.6, false]] : [];
    boxes.push([L, color, radius, axes]);
    boxes.forEach(function (box) {
      var M = box[0];
      for (var i = 0; i < 2; i++) for (var j = 0; j < 2; j++) for (var k = 0; k < 2; k++) {
        var p = [i, j, k];
        for (var axis = 0; axis < 3; axis++) {
          if (p[axis] === 1) continue;
          var q = p.slice(); q[axis] = 1;
          var origin = (i + j + k) === 0 && box[3];
          viewer.addCylinder({start: cart(p, M), end: cart(q, M), radius: origin ? box[2] * 1.6 : box[2],
                              color: origin ? AXIS[axis] : box[1], dashed: dashed, fromCap: 1, toCap: 1});
        }
      }
    });
    if (axes && crystalViewHardwareGL()) {  // text sprites are slow under software GL; the legend names the colours
      ["a", "b", "c"].forEach(function (name, axis) {
        var tip = [0, 0, 0]; tip[axis] = 1.08;
        viewer.addLabel(name, {position: cart(tip, L), fontColor: AXIS[axis], fontSize: 16,
                               backgroundOpacity: 0.0, inFront: true});
      });
    }
  }

  function drawAtoms(viewer, frame, sc, opacity, ghost) {
    var L = scaled(frame.L, sc), n = frame.Z.length, drawn = 0;
    for (var i = 0; i < n; i++) {
      var z = String(frame.Z[i]);
      var masked = frame.M && frame.M[i];
      var spec = masked ? {radius: 0.45, color: UNDECIDED, opacity: ghost ? 0.2 : 0.85}
                        : {radius: data.radii[z] || 0.5, color: data.colors[z] || "#ff69b4", opacity: opacity};
      var pts = images(frame, i, sc);
      for (var k = 0; k < pts.length && drawn < data.maxAtoms; k++, drawn++) {
        viewer.addSphere({center: cart(pts[k], L), radius: spec.radius, color: spec.color, opacity: spec.opacity});
      }
    }
  }

  function chip(color, text, extra) {
    return '<span class="chip"><span class="dot' + (extra || "") + '" style="background:' + color + '"></span>' + text + "</span>";
  }

  function showLegend(frame, ghost) {
    if (!legend || data.legend === false) return;
    var seen = {}, masked = 0, parts = [];
    frame.Z.forEach(function (z, i) { if (frame.M && frame.M[i]) masked++; else seen[z] = true; });
    if (ghost) ghost.Z.forEach(function (z) { seen[z] = true; });
    Object.keys(seen).map(Number).sort(function (a, b) { return a - b; }).forEach(function (z) {
      parts.push(chip(data.colors[String(z)] || "#ff69b4", data.symbols[String(z)] || String(z)));
    });
    if (masked) parts.push(chip(UNDECIDED, "type not decided yet (" + masked + ")", " undecided"));
    if (ghost) parts.push(chip("#ddd", data.ghostLabel, " ghost"));
    parts.push('<span class="chip"><b style="color:#d62728">a</b> <b style="color:#2ca02c">b</b> ' +
               '<b style="color:#1f77b4">c</b>&nbsp;cell edges</span>');
    var html = parts.join("");
    if (legend.innerHTML !== html) legend.innerHTML = html;
  }

  function draw(viewer, k) {
    var frame = data.frames[k];
    var ghost = data.ghosts ? data.ghosts[data.ghosts.length === 1 ? 0 : k] : null;
    viewer.removeAllShapes();
    viewer.removeAllLabels();
    if (ghost) {
      drawCell(viewer, ghost.L, [1, 1, 1], "#aaaaaa", 0.03, true, false);
      drawAtoms(viewer, ghost, data.supercell, 0.22, true);
    }
    drawCell(viewer, frame.L, data.supercell, "#444444", 0.035, false, true);
    drawAtoms(viewer, frame, data.supercell, 1.0, false);
  }

  function referenceFrame() {  // the crystal at t = 0 (else the last frame): the camera is fitted to it
    var k = data.steps.indexOf(0);
    return k >= 0 ? k : data.frames.length - 1;
  }

  function reach(frame, centre) {  // distance from centre to the farthest corner of the frame's (super)cell
    var L = scaled(frame.L, data.supercell), far = 0;
    for (var i = 0; i < 2; i++) for (var j = 0; j < 2; j++) for (var k = 0; k < 2; k++) {
      var p = cart([i, j, k], L);
      far = Math.max(far, Math.hypot(p.x - centre.x, p.y - centre.y, p.z - centre.z));
    }
    return far;
  }

  function outline(frame) {  // cell corners and every drawn atom of a frame (Cartesian), for fitting
    var sc = data.supercell, L = scaled(frame.L, sc), pts = [];
    for (var i = 0; i < 2; i++) for (var j = 0; j < 2; j++) for (var k = 0; k < 2; k++) pts.push(cart([i, j, k], L));
    for (var n = 0; n < frame.Z.length && pts.length < data.maxAtoms; n++)
      images(frame, n, sc).forEach(function (f) { pts.push(cart(f, L)); });
    return pts;
  }

  // Centre the camera on the reference cell (with its copies on the faces); the returned function fits
  // what the screen shows of it, at the current rotation and canvas size, to the canvas with a margin
  // (it measures, so calling it again changes nothing). A noisy frame with a larger cell leaves a little
  // more room (at most a fifth), so the clean crystal never looks tiny.
  function fit(viewer, k) {
    var ref = data.frames[k], sc = data.supercell;
    viewer.removeAllShapes();
    viewer.removeAllLabels();
    drawCell(viewer, ref.L, sc, "#444444", 0.035, false, false);
    drawAtoms(viewer, ref, sc, 1.0, false);
    viewer.zoomTo();
    var centre = cart([0.5 * sc[0], 0.5 * sc[1], 0.5 * sc[2]], ref.L);
    var base = reach(ref, centre), widest = base;
    if (viewers.length === 1) data.frames.forEach(function (f) { widest = Math.max(widest, reach(f, centre)); });
    var room = Math.min(1.2, widest / Math.max(base, 1e-6)), points = outline(ref);
    return function () {
      try {
        var screen = viewer.modelToScreen(points);
        var xs = screen.map(function (p) { return p.x; }), ys = screen.map(function (p) { return p.y; });
        var w = Math.max.apply(null, xs) - Math.min.apply(null, xs), h = Math.max.apply(null, ys) - Math.min.apply(null, ys);
        var box = viewer.container.getBoundingClientRect(), fill = 0.92 / room;
        var width = box.width / data.grid[1], height = box.height / data.grid[0];  // a grid's viewers share the box
        var pad = Math.min(70, 0.15 * Math.min(width, height));  // room for the atoms' radii
        if (!(width > pad && height > pad && w > 0 && h > 0) || viewer.CAMERA_Z === undefined) return;
        var factor = Math.max((w + pad) / (fill * width), (h + pad) / (fill * height));
        var view = viewer.getView();
        view[3] = viewer.CAMERA_Z - factor * (viewer.CAMERA_Z - view[3]);
        viewer.setView(view);
      } catch (e) {}
    };
  }

  function restoreRotation(viewer) {
    var key = "crystal-diffusion-view-" + data.group;
    try {
      var saved = JSON.parse(window.sessionStorage.getItem(key) || "null");
      if (saved && saved.length === 8) {
        var v = viewer.getView();
        v[4] = saved[4]; v[5] = saved[5]; v[6] = saved[6]; v[7] = saved[7];
        viewer.setView(v);
      }
      var save = function () { try { window.sessionStorage.setItem(key, JSON.stringify(viewer.getView())); } catch (e) {} };
      ["mouseup", "touchend", "wheel"].forEach(function (name) { document.body.addEventListener(name, save); });
    } catch (e) {}
  }

  function announce(k, started) {  // for tests: which frame is on screen, and how long drawing it took (ms)
    var id = data.id + ":" + k;
    document.body.setAttribute("data-rendered", id);
    var took = started === undefined ? null : performance.now() - started;
    try { window.parent.postMessage({type: "crystal-diffusion-rendered", frame: id, step: data.steps[k], drawMs: took}, "*"); } catch (e) {}
  }

  function frameOfStep(t) {
    var best = 0;
    for (var k = 0; k < data.steps.length; k++)
      if (Math.abs(data.steps[k] - t) < Math.abs(data.steps[best] - t)) best = k;
    return best;
  }

  var slider = null;
  function sliderStep() {
    if (!data.followSlider) return null;
    try {
      if (!slider || !slider.isConnected) {
        slider = null;
        var inputs = window.parent.document.querySelectorAll('input[type="range"]');
        for (var i = 0; i < inputs.length; i++) {
          if ((inputs[i].getAttribute("aria-label") || "").indexOf(data.followSlider) === 0) { slider = inputs[i]; break; }
        }
      }
      if (!slider) return null;
      var value = parseInt(slider.getAttribute("aria-valuetext"), 10);
      return isNaN(value) ? null : value;
    } catch (e) { return null; }
  }

  function urlStep() {
    try {
      var value = new URLSearchParams(window.parent.location.search).get(data.follow);
      return value === null ? null : parseInt(value, 10);
    } catch (e) { return null; }  // not same-origin: stay on the initial frame
  }

  // ---- the tools under the canvas: copies on the faces (when there are any), full screen
  var redrawAll = function () {};
  var EXPAND = '<svg width="13" height="13" viewBox="0 0 16 16" fill="none" stroke="currentColor" stroke-width="2" style="vertical-align:-1px"><path d="M1 6V1h5M10 1h5v5M15 10v5h-5M6 15H1v-5"/></svg>';
  function fullscreenElement() { return document.fullscreenElement || document.webkitFullscreenElement || null; }
  function inParentFullscreen() {
    try { return window.frameElement && window.parent.document.fullscreenElement === window.frameElement; } catch (e) { return false; }
  }
  function toggleFullscreen() {
    if (fullscreenElement()) { document.exitFullscreen(); return; }
    if (inParentFullscreen()) { window.parent.document.exitFullscreen(); return; }
    var ask = wrap.requestFullscreen || wrap.webkitRequestFullscreen;
    var parentFallback = function () {  // an iframe without allow="fullscreen": enlarge the iframe itself
      try { if (window.frameElement) window.frameElement.requestFullscreen(); } catch (e) {}
    };
    try {
      var asked = ask ? ask.call(wrap) : null;
      if (asked && asked.catch) asked.catch(parentFallback); else if (!ask) parentFallback();
    } catch (e) { parentFallback(); }
  }
  function buildTools() {
    if (!tools) return;
    var html = "";
    if (hasCopies()) html += '<label title="Atoms on a face, edge or corner are also drawn on the opposite ones, ' +
      'the same atoms at every step"><input type="checkbox" class="copies"' + (showImages ? " checked" : "") +
      '> copies<span class="wide"> on the faces</span></label>';
    html += '<button type="button" class="fullscreen" title="Full screen (Esc to leave)">' + EXPAND +
      '<span class="wide"> Full screen</span></button>';
    tools.innerHTML = html;
    var box = tools.querySelector(".copies");
    if (box) box.addEventListener("change", function () {
      showImages = box.checked;
      try { window.sessionStorage.setItem(imagesKey, showImages ? "on" : "off"); } catch (e) {}
      redrawAll();
    });
    tools.querySelector(".fullscreen").addEventListener("click", toggleFullscreen);
    var label = function () {
      var on = !!fullscreenElement() || inParentFullscreen();
      tools.querySelector(".fullscreen").innerHTML = on ? "Leave full screen (Esc)" :
        EXPAND + '<span class="wide"> Full screen</span>';
    };
    document.addEventListener("fullscreenchange", label);
    try { window.parent.document.addEventListener("fullscreenchange", label); } catch (e) {}
  }
  // the canvas follows its box (legend wrapping, full screen, the page's layout) and stays fitted
  // to it until the user zooms by hand
  function keepSized(viewer, refit) {
    var box = viewer.container || (wrap && wrap.querySelector('div[id^="3dmolviewer"]'));
    if (!box || typeof ResizeObserver === "undefined") return;
    var zoomed = false;
    ["wheel", "touchstart"].forEach(function (name) { box.addEventListener(name, function () { zoomed = true; }, {passive: true}); });
    var last = box.clientWidth + "x" + box.clientHeight;
    new ResizeObserver(function () {
      var now = box.clientWidth + "x" + box.clientHeight;
      if (now === last) return;
      last = now;
      viewer.resize();
      if (!zoomed && refit) { viewer.render(); refit(); }
      viewer.render();
    }).observe(box);
  }
  buildTools();

  if (viewers.length > 1) {  // a gallery: one frame per viewer of the grid
    var drawGrid = function (first) {
      viewers.forEach(function (viewer, k) {
        if (k >= data.frames.length) return;
        var zoomToFit = first ? fit(viewer, k) : null;
        draw(viewer, k);
        if (data.titles) viewer.addLabel(data.titles[k], {useScreen: true, position: {x: 8, y: 8, z: 0}, fontSize: 13,
          fontColor: "black", backgroundColor: "white", backgroundOpacity: 0.7});
        if (first) {
          viewer.rotate(data.rotation[0], "x");
          viewer.rotate(data.rotation[1], "y");
          viewer.render();
          zoomToFit();
        }
        viewer.render();
      });
    };
    drawGrid(true);
    redrawAll = function () { drawGrid(false); };
    showLegend({Z: [].concat.apply([], data.frames.map(function (f) { return f.Z; })), M: null}, null);
    if (wrap && typeof ResizeObserver !== "undefined") {
      new ResizeObserver(function () { viewers.forEach(function (v) { v.resize(); v.render(); }); }).observe(wrap);
    }
    announce("grid");
    return;
  }

  var viewer = viewers[0];
  var current = data.initial;
  function wantedStep() {
    var t = sliderStep();
    return t !== null ? t : urlStep();
  }
  if (data.follow) {
    var t0 = wantedStep();
    if (t0 !== null && !isNaN(t0)) current = frameOfStep(t0);
  }
  var zoomToFit = fit(viewer, referenceFrame());
  viewer.rotate(data.rotation[0], "x");
  viewer.rotate(data.rotation[1], "y");
  restoreRotation(viewer);
  viewer.render();
  zoomToFit();
  draw(viewer, current);
  showLegend(data.frames[current], data.ghosts ? data.ghosts[data.ghosts.length === 1 ? 0 : current] : null);
  viewer.render();
  keepSized(viewer, zoomToFit);
  announce(current);
  redrawAll = function () { draw(viewer, current); viewer.render(); announce(current); };

  if (data.follow) {
    var poll = function () {
      var t = wantedStep();
      if (t !== null && !isNaN(t)) {
        var k = frameOfStep(t);
        if (k !== current) {
          var started = performance.now();
          current = k;
          draw(viewer, k);
          showLegend(data.frames[k], data.ghosts ? data.ghosts[data.ghosts.length === 1 ? 0 : k] : null);
          viewer.render();
          announce(k, started);
        }
      }
      window.requestAnimationFrame(poll);
    };
    window.requestAnimationFrame(poll);
  }
}
