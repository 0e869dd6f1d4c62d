// Draws periodic crystals into 3Dmol viewers; inlined into each view's HTML by explorer/viewer.py.
// Conventions as in diffusion/crystal.py: lattice rows are the vectors a, b, c (angstrom),
// Cartesian = frac @ lattice. A frame is {L: [9], F: [3n], Z: [n], M: [n] or null, B: boundary}.
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

function crystalView(viewers, data, legend) {
  var AXIS = ["#d62728", "#2ca02c", "#1f77b4"];
  var UNDECIDED = "#505050";  // dark grey: darker than every element colour of the VESTA scheme

  function cart(f, L) {
    return {x: f[0] * L[0] + f[1] * L[3] + f[2] * L[6],
            y: f[0] * L[1] + f[1] * L[4] + f[2] * L[7],
            z: f[0] * L[2] + f[1] * L[5] + f[2] * L[8]};
  }
  function wrap(x) { x = x % 1; if (x < 0) x += 1; return x >= 1 ? 0 : x; }

  // positions (in supercell fractions) of every drawn image of atom i
  function images(frame, i, sc, boundary) {
    var base = [], out = [];
    var f = [wrap(frame.F[3 * i]), wrap(frame.F[3 * i + 1]), wrap(frame.F[3 * i + 2])];
    for (var a = 0; a < sc[0]; a++) for (var b = 0; b < sc[1]; b++) for (var c = 0; c < sc[2]; c++)
      base.push([(f[0] + a) / sc[0], (f[1] + b) / sc[1], (f[2] + c) / sc[2]]);
    for (var k = 0; k < base.length; k++) {
      for (var ox = -1; ox <= 1; ox++) for (var oy = -1; oy <= 1; oy++) for (var oz = -1; oz <= 1; oz++) {
        var g = [base[k][0] + ox, base[k][1] + oy, base[k][2] + oz];
        if (ox === 0 && oy === 0 && oz === 0) { out.push(g); continue; }
        if (!(boundary > 0)) continue;
        var keep = true;
        for (var d = 0; d < 3; d++) {
          var eps = boundary / sc[d];
          if (!(g[d] > -eps && g[d] < 1 + eps)) keep = false;
        }
        if (keep) out.push(g);
      }
    }
    return out;
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
      var pts = images(frame, i, sc, frame.B || 0);
      for (var k = 0; k < pts.length && drawn < data.maxAtoms; k++, drawn++) {
        viewer.addSphere({center: cart(pts[k], L), radius: spec.radius, color: spec.color, opacity: spec.opacity});
      }
    }
  }

  function chip(color, text, extra) {
    return '<span class="chip"><span class="dot' + (extra || "") + '" style="background:' + color + '"></span>' + text + "</span>";
  }

  function showLegend(frame, ghost) {
    if (!legend) return;
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
    legend.innerHTML = parts.join("");
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

  function largest() {  // the frame with the longest cell diagonal: zoom once so every frame fits
    var best = 0, size = -1;
    data.frames.forEach(function (f, k) {
      var d = cart([data.supercell[0], data.supercell[1], data.supercell[2]], f.L);
      var s = d.x * d.x + d.y * d.y + d.z * d.z;
      if (s > size) { size = s; best = k; }
    });
    return best;
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

  if (viewers.length > 1) {  // a gallery: one frame per viewer of the grid
    viewers.forEach(function (viewer, k) {
      if (k >= data.frames.length) return;
      draw(viewer, k);
      if (data.titles) viewer.addLabel(data.titles[k], {useScreen: true, position: {x: 8, y: 8, z: 0}, fontSize: 13,
        fontColor: "black", backgroundColor: "white", backgroundOpacity: 0.7});
      viewer.zoomTo(); viewer.rotate(data.rotation[0], "x"); viewer.rotate(data.rotation[1], "y"); viewer.render();
    });
    showLegend({Z: [].concat.apply([], data.frames.map(function (f) { return f.Z; })), M: null}, null);
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
  draw(viewer, largest());
  viewer.zoomTo();
  viewer.rotate(data.rotation[0], "x");
  viewer.rotate(data.rotation[1], "y");
  restoreRotation(viewer);
  draw(viewer, current);
  showLegend(data.frames[current], data.ghosts ? data.ghosts[data.ghosts.length === 1 ? 0 : current] : null);
  viewer.render();
  announce(current);

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
