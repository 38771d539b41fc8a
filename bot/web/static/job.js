// The job page: action buttons submit in the background and the new job's progress and result
// appear in place (a small poll of /jobs/{id}/progress). Without JavaScript the forms still post.
import { describe, follow, showImages, showResult } from "./follow.js";

const article = document.querySelector("article.job");
const csrf = article.dataset.csrf;
const result = document.getElementById("result");

for (const form of document.querySelectorAll("form.action")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = event.submitter;
    const body = new FormData(form);
    if (button && button.name) body.set(button.name, button.value);
    const buttons = document.querySelectorAll("form.action button");
    for (const b of buttons) b.disabled = true;
    const status = document.getElementById("result-status");
    result.hidden = false;
    status.textContent = `Submitting ${button ? button.textContent : ""}…`;
    try {
      const response = await fetch(form.action, {
        method: "POST", body, headers: { Accept: "application/json", "X-CSRF-Token": csrf },
      });
      const summary = await response.json();
      if (!response.ok) { status.textContent = summary.error || "Refused."; return; }
      await showResult(summary);
    } finally {
      for (const b of buttons) b.disabled = false;
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
