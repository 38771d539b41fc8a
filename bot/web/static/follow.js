// Following a job until it ends, and showing its images: shared by the job page and the editor.

export function showImages(target, summary) {
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

export function describe(summary) {
  if (summary.status === "queued") return summary.position ? `Waiting, position ${summary.position}` : "Waiting";
  if (summary.status === "running") return summary.total ? `Running: step ${summary.step} of ${summary.total}` : "Running";
  if (summary.status === "done") return "Done";
  return `${summary.status}${summary.error ? ": " + summary.error : ""}`;
}

// Poll /jobs/{id}/progress until the job ends; `onUpdate` sees every answer.
export async function follow(jobId, onUpdate) {
  for (;;) {
    const response = await fetch(`/jobs/${jobId}/progress`, { headers: { Accept: "application/json" } });
    if (!response.ok) return null;
    const summary = await response.json();
    onUpdate(summary);
    if (["done", "failed", "cancelled", "blocked"].includes(summary.status)) return summary;
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
}

// Show a submitted job's progress and result in the page's #result panel.
export async function showResult(summary) {
  const status = document.getElementById("result-status");
  const bar = document.getElementById("result-progress");
  document.getElementById("result-link").href = summary.url;
  return follow(summary.job_id, (s) => {
    status.textContent = describe(s);
    bar.max = s.total || 1;
    bar.value = s.status === "done" ? bar.max : s.step || 0;
    if (s.status === "done") showImages(document.getElementById("result-images"), s);
  });
}
