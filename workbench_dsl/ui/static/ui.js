// workbench ui: the little JavaScript the dashboard needs (no framework, nothing loaded from
// elsewhere). It follows a running run (swapping in the parts of its page that changed),
// follows a task's log, and refreshes pages that wait on something outside the browser.
"use strict";

(function () {
  const POLL_MS = 1500;

  async function getJSON(url) {
    const r = await fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } });
    if (!r.ok) throw new Error(url + ": " + r.status);
    return r.json();
  }

  // -- a run's page: refresh the live part whenever the run's signature changes -------------
  function followRun(main) {
    const runId = main.dataset.run;
    const task = main.dataset.task;
    let sig = main.dataset.sig;
    let status = main.dataset.status;
    const live = document.getElementById("live");
    const liveUrl = "/runs/" + encodeURIComponent(runId) + "/live" + (task ? "?task=" + encodeURIComponent(task) : "");
    async function tick() {
      try {
        const state = await getJSON("/api/runs/" + encodeURIComponent(runId));
        if (state.sig !== sig) {
          const r = await fetch(liveUrl, { credentials: "same-origin" });
          if (r.ok) {
            // Our own server-rendered, escaped HTML: the same markup the page was built from.
            live.innerHTML = await r.text();
            sig = r.headers.get("x-sig") || state.sig;
            main.dataset.sig = sig;
          }
        }
        status = state.status;
        main.dataset.status = status;
      } catch (e) {
        // The server restarted or the network blinked: try again on the next tick.
      }
      if (status === "RUNNING") setTimeout(tick, POLL_MS);
    }
    if (status === "RUNNING") setTimeout(tick, POLL_MS);
  }

  // -- a task's log: the last 64 kB, then new bytes while the attempt runs --------------------
  function followLog(pre) {
    const base = pre.dataset.url;
    let attempt = null;
    let offset = -1;
    let first = true;
    async function tick() {
      let again = false;
      try {
        const url = base + "&offset=" + offset + (attempt !== null ? "&attempt=" + attempt : "");
        const chunk = await getJSON(url);
        if (chunk.attempt === null) {
          pre.textContent = "(no log yet)";
          again = runIsLive();
        } else {
          if (first) {
            pre.textContent = chunk.skipped ? "… (" + chunk.skipped + " earlier bytes not shown)\n" : "";
            if (chunk.attempts.length > 1) pre.textContent += "==> attempt " + chunk.attempt + " <==\n";
            first = false;
          }
          const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
          if (chunk.text) pre.append(document.createTextNode(chunk.text));
          if (atBottom) pre.scrollTop = pre.scrollHeight;
          attempt = chunk.attempt;
          offset = chunk.offset;
          if (!chunk.done || chunk.text.length > 0) {
            again = true;
          } else if (chunk.newer) {
            attempt = attempt + 1;
            offset = 0;
            pre.append(document.createTextNode("\n==> attempt " + attempt + " <==\n"));
            again = true;
          } else {
            again = runIsLive(); // a retry may still start
          }
        }
      } catch (e) {
        again = true;
      }
      if (again) setTimeout(tick, 1000);
    }
    function runIsLive() {
      const main = document.getElementById("run-page");
      return !!main && main.dataset.status === "RUNNING";
    }
    tick();
  }

  // -- pages waiting on something else (an approval, a deploy): reload now and then -----------
  function autoRefresh(seconds) {
    setInterval(function () {
      const busy = Array.from(document.querySelectorAll("textarea, input[type=text]")).some(
        (el) => el === document.activeElement || el.value.trim() !== ""
      );
      if (!busy && !document.hidden) window.location.reload();
    }, seconds * 1000);
  }

  // -- a wide graph: bring the node it is about into view ----------------------------------
  function centerOn(boxId, selector) {
    const box = document.getElementById(boxId);
    const node = box && box.querySelector(selector);
    if (!node) return;
    const r = node.getBoundingClientRect();
    const c = box.getBoundingClientRect();
    box.scrollLeft += r.left + r.width / 2 - (c.left + c.width / 2);
  }

  document.addEventListener("DOMContentLoaded", function () {
    centerOn("lineage-graph", ".target");
    centerOn("dag", ".selected");
    const main = document.getElementById("run-page");
    if (main) followRun(main);
    const pre = document.getElementById("log");
    if (pre) followLog(pre);
    const refresh = document.querySelector("main[data-refresh]");
    if (refresh) autoRefresh(Number(refresh.dataset.refresh) || 5);
  });
})();
