// Small page helpers; no inline scripts (the console's CSP allows scripts from 'self' only).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("[data-print]")) {
    b.addEventListener("click", () => window.print());
  }
});
