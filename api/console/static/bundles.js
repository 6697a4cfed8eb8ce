// The export job page: polls the job's status (JSON) until it is done or failed, updating
// the progress bar and its text, then shows the download link. No library; bounded polls.
"use strict";
(() => {
  const box = document.getElementById("job");
  if (!box) return;
  const POLL_MS = 500;
  const MAX_POLLS = 4 * 3600 * 2; // four hours at two polls a second, then stop
  const bar = document.getElementById("job-progress");
  const text = document.getElementById("job-progress-text");
  const state = document.getElementById("job-state");
  const error = document.getElementById("job-error");
  const done = document.getElementById("job-done");
  const del = document.getElementById("delete-form");

  function size(n) {
    const units = [["GiB", 1 << 30], ["MiB", 1 << 20], ["KiB", 1 << 10]];
    for (const [u, step] of units) if (n >= step) return (n / step).toFixed(1) + " " + u;
    return n.toLocaleString("en") + " B";
  }

  function show(st) {
    const p = st.progress;
    const values = Object.assign({}, p, {
      bytes_done: size(p.bytes_done), bytes_total: size(p.bytes_total), zip_bytes: size(p.zip_bytes),
    });
    text.textContent = box.dataset.pattern.replace(/\{(\w+)\}/g, (m, k) => (k in values ? values[k] : m));
    bar.max = Math.max(p.records_total + p.bytes_total, 1);
    bar.value = p.records_done + p.bytes_done;
    box.dataset.state = st.state;
    state.textContent = box.dataset["state" + st.state.charAt(0).toUpperCase() + st.state.slice(1)] || st.state;
    if (st.state === "failed") {
      error.textContent = box.dataset.failed.replace("{message}", st.error || "");
      error.hidden = false;
    }
    if (st.state === "done") {
      document.getElementById("job-size").textContent = st.size_text || "";
      document.getElementById("job-expires").textContent = st.expires_beijing || "";
      done.hidden = false;
    }
    if (st.state === "done" || st.state === "failed") del.hidden = false;
  }

  let polls = 0;
  async function poll() {
    if (box.dataset.state === "done" || box.dataset.state === "failed" || polls++ >= MAX_POLLS) return;
    try {
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), 10000);
      const r = await fetch(box.dataset.status, { headers: { Accept: "application/json" }, signal: ctl.signal, cache: "no-store" });
      clearTimeout(timer);
      if (r.ok && (r.headers.get("content-type") || "").startsWith("application/json")) show(await r.json());
    } catch (e) {
      // a lost poll is retried at the next tick
    }
    setTimeout(poll, POLL_MS);
  }
  poll();
})();
