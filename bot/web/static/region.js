// The Vary (Region) editor: rectangles, freehand lassos and brush strokes on a canvas over the
// image, with undo. Submitting sends a white-on-black PNG mask at the image's own size.
import { showResult } from "./follow.js";

const editor = document.querySelector("section.editor");
const image = document.getElementById("source");
const canvas = document.getElementById("overlay");
const context = canvas.getContext("2d");
const shapes = [];
let current = null;

function tool() { return document.querySelector("input[name=tool]:checked").value; }
function brush() { return Number(document.getElementById("brush").value); }

function point(event) {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}

function paint(target, shape, fill) {
  target.fillStyle = fill;
  target.strokeStyle = fill;
  if (shape.kind === "rect") {
    const [x0, y0] = shape.points[0];
    const [x1, y1] = shape.points[shape.points.length - 1];
    target.fillRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
  } else if (shape.kind === "lasso") {
    target.beginPath();
    shape.points.forEach(([x, y], i) => (i ? target.lineTo(x, y) : target.moveTo(x, y)));
    target.closePath();
    target.fill();
  } else {
    target.lineWidth = shape.size;
    target.lineCap = "round";
    target.lineJoin = "round";
    target.beginPath();
    shape.points.forEach(([x, y], i) => (i ? target.lineTo(x, y) : target.moveTo(x, y)));
    if (shape.points.length === 1) target.lineTo(shape.points[0][0] + 0.1, shape.points[0][1]);
    target.stroke();
  }
}

function redraw() {
  context.clearRect(0, 0, canvas.width, canvas.height);
  for (const shape of [...shapes, ...(current ? [current] : [])]) paint(context, shape, "rgba(139, 133, 255, 0.55)");
  document.getElementById("submit").disabled = shapes.length === 0;
  document.getElementById("undo").disabled = shapes.length === 0;
}

function setup() {
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  redraw();
}
if (image.complete) setup(); else image.addEventListener("load", setup);

canvas.addEventListener("pointerdown", (event) => {
  canvas.setPointerCapture(event.pointerId);
  const size = brush() * canvas.width / canvas.getBoundingClientRect().width;
  current = { kind: tool(), points: [point(event)], size };
  redraw();
});
canvas.addEventListener("pointermove", (event) => {
  if (!current) return;
  if (current.kind === "rect") current.points[1] = point(event); else current.points.push(point(event));
  redraw();
});
canvas.addEventListener("pointerup", () => {
  if (current) shapes.push(current);
  current = null;
  redraw();
});
// The keyboard's way to mark a region: a rectangle given in percent of the image.
document.getElementById("add-rect").addEventListener("click", () => {
  const value = (id) => Math.min(100, Math.max(0, Number(document.getElementById(id).value) || 0)) / 100;
  const x = value("rect-x") * canvas.width;
  const y = value("rect-y") * canvas.height;
  const w = value("rect-w") * canvas.width;
  const h = value("rect-h") * canvas.height;
  shapes.push({ kind: "rect", points: [[x, y], [Math.min(canvas.width, x + w), Math.min(canvas.height, y + h)]] });
  redraw();
});
document.getElementById("undo").addEventListener("click", () => { shapes.pop(); redraw(); });
document.getElementById("clear").addEventListener("click", () => { shapes.length = 0; redraw(); });
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === "z") { shapes.pop(); redraw(); }
});

document.getElementById("region-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const mask = document.createElement("canvas");
  mask.width = canvas.width;
  mask.height = canvas.height;
  const target = mask.getContext("2d");
  target.fillStyle = "#000";
  target.fillRect(0, 0, mask.width, mask.height);
  for (const shape of shapes) paint(target, shape, "#fff");
  const blob = await new Promise((resolve) => mask.toBlob(resolve, "image/png"));
  const body = new FormData();
  body.set("prompt", document.getElementById("prompt").value);
  body.set("mask", blob, "mask.png");
  const status = document.getElementById("result-status");
  document.getElementById("result").hidden = false;
  status.textContent = "Submitting…";
  document.getElementById("submit").disabled = true;
  try {
    const response = await fetch(`/region/${editor.dataset.job}`, {
      method: "POST", body, headers: { Accept: "application/json", "X-CSRF-Token": editor.dataset.csrf },
    });
    const summary = await response.json();
    if (!response.ok) { status.textContent = summary.error || "Refused."; return; }
    await showResult(summary);
  } finally {
    redraw();
  }
});
