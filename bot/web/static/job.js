// The job page: action buttons submit in the background and the new job's progress and result
// appear in place (a small poll of /jobs/{id}/progress). Without JavaScript the forms still post.
const article = document.querySelector("article.job");
const csrf = article.dataset.csrf;

function showImages(target, summary) {
  target.replaceChildren();
  summary.images.forEach((url, i) => {
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.src = url;
    img.alt = `${summary.prompt} (image ${i + 1})`;
    figure.append(img);
    target.append(figure);
  });
}

async function follow(jobId, onUpdate) {
  for (;;) {
    const response = await fetch(`/jobs/${jobId}/progress`, { headers: { Accept: "application/json" } });
    if (!response.ok) return null;
    const summary = await response.json();
    onUpdate(summary);
    if (["done", "failed", "cancelled", "blocked"].includes(summary.status)) return summary;
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
}

function describe(summary) {
  if (summary.status === "queued") return summary.position ? `Waiting, position ${summary.position}` : "Waiting";
  if (summary.status === "running") return summary.total ? `Running: step ${summary.step} of ${summary.total}` : "Running";
  if (summary.status === "done") return "Done";
  return `${summary.status}${summary.error ? ": " + summary.error : ""}`;
}

const result = document.getElementById("result");
for (const form of document.querySelectorAll("form.action")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = event.submitter;
    const body = new FormData(form);
    if (button && button.name) body.set(button.name, button.value);
    for (const b of document.querySelectorAll("form.action button")) b.disabled = true;
    const status = document.getElementById("result-status");
    const bar = document.getElementById("result-progress");
    result.hidden = false;
    status.textContent = `Submitting ${button ? button.textContent : ""}…`;
    try {
      const response = await fetch(form.action, {
        method: "POST", body, headers: { Accept: "application/json", "X-CSRF-Token": csrf },
      });
      const summary = await response.json();
      if (!response.ok) { status.textContent = summary.error || "Refused."; return; }
      document.getElementById("result-link").href = summary.url;
      await follow(summary.job_id, (s) => {
        status.textContent = describe(s);
        bar.max = s.total || 1;
        bar.value = s.status === "done" ? bar.max : s.step || 0;
        if (s.status === "done") showImages(document.getElementById("result-images"), s);
      });
    } finally {
      for (const b of document.querySelectorAll("form.action button")) b.disabled = false;
    }
  });
}

// A job still queued or running when the page opened: follow it and show its images when done.
if (article.dataset.finished === "no") {
  follow(article.dataset.job, (s) => {
    document.getElementById("status").textContent = describe(s);
    if (s.status === "done") showImages(document.getElementById("images"), s);
  });
}
