// Small page helpers; no inline scripts (the console's CSP allows scripts from 'self' only).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("[data-print]")) {
    b.addEventListener("click", () => window.print());
  }
  // "Tick every project on this page" (the archive's export form).
  for (const b of document.querySelectorAll("[data-pick-all]")) {
    b.addEventListener("click", () => {
      for (const box of document.querySelectorAll(b.dataset.pickAll)) box.checked = true;
    });
  }
});
