// meshplane console: keep <main id="live"> current from the server-sent event stream.
// The server renders (and escapes) everything; this only swaps the fragment in. At most one
// fetch is in flight: events that arrive meanwhile cause one more fetch, not one each.
"use strict";
(function () {
  const live = document.getElementById("live");
  let fetching = false;
  let again = false;

  async function refresh() {
    if (fetching) { again = true; return; }
    fetching = true;
    try {
      do {
        again = false;
        const url = new URL(live.dataset.source || window.location.href, window.location.href);
        url.searchParams.set("fragment", "1");
        const answer = await fetch(url, { credentials: "same-origin", cache: "no-store" });
        if (answer.status === 401) { window.location.assign("/console/login"); return; }
        live.innerHTML = await answer.text();
        document.body.dataset.revision = live.querySelector("[data-testid=revision]")?.textContent || "";
      } while (again);
    } finally {
      fetching = false;
    }
  }

  // Traffic labels: {"target/<mesh>/<node>": "12 rps · 100% ok · …"}, written as text only.
  function relabel(event) {
    const labels = JSON.parse(event.data);
    for (const label of live.querySelectorAll("[data-traffic]")) {
      label.textContent = labels[label.dataset.traffic] || "no traffic";
    }
  }

  // The stream's first event says the store revision as it opens; a page rendered at that
  // revision is current, and re-rendering it at once would double the load of a large mesh.
  let first = true;
  function changed(event) {
    const rendered = live.querySelector("[data-testid=revision]")?.textContent;
    const skip = first && rendered !== undefined && rendered === event.data;
    first = false;
    if (!skip) refresh();
  }

  const events = new EventSource("/console/events");
  events.addEventListener("change", changed);
  events.addEventListener("traffic", relabel);
  events.addEventListener("expired", () => { events.close(); window.location.assign("/console/login"); });
  events.addEventListener("open", () => document.body.classList.add("connected"));
  events.addEventListener("error", () => document.body.classList.remove("connected"));
})();
