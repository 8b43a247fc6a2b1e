// The only script: the copy button on the token page. Served from /admin/static so the
// CSP's script-src 'self' allows it; no inline handlers anywhere.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const field = document.getElementById(button.dataset.copy);
      const status = document.getElementById("copy-status");
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
        status.textContent = "Copied.";
      } catch (error) {
        status.textContent = "Selected: press Ctrl+C to copy.";
      }
    });
  }
});
