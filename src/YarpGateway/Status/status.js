// The status page: reads /status.json 2 s after its last read ended and updates the figures in place (no page reload).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const formats = [0, 1, 2].map((digits) => new Intl.NumberFormat("en-US", { maximumFractionDigits: digits }));
  const fmt = (n, digits = 0) => (n === null || n === undefined) ? "-" : formats[digits].format(Number(n));

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  // The last minute's requests as a polyline's points, scaled to the busiest second (at least 1).
  function sparkPoints(values) {
    const max = Math.max(1, ...values);
    return { max, points: values.map((v, i) => (i * 2) + "," + (19 - (v / max) * 18).toFixed(1)).join(" ") };
  }

  function sparkline() {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", "120");
    svg.setAttribute("height", "20");
    svg.setAttribute("role", "img");
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", "#2563eb");
    line.setAttribute("stroke-width", "1.5");
    svg.appendChild(line);
    return { svg, line };
  }

  // Writes only what changed: a page with thousands of destinations then lays out only the cells whose figures moved.
  function setText(element, text) {
    if (element.textContent !== text) element.textContent = text;
  }

  function setAttribute(element, name, value) {
    if (element.getAttribute(name) !== value) element.setAttribute(name, value);
  }

  // Puts the children in the given order, moving only those out of place.
  function order(parent, children) {
    let expected = parent.firstElementChild;
    for (const child of children) {
      if (child !== expected) parent.insertBefore(child, expected);
      else expected = expected.nextElementSibling;
    }
    while (expected) {
      const next = expected.nextElementSibling;
      expected.remove();
      expected = next;
    }
  }

  function strip(status) {
    const items = [
      ["uptime", fmt(status.uptimeSeconds) + " s"],
      ["connections open", fmt(status.connections.open)],
      ["accepted/s", fmt(status.connections.acceptedPerSecond, 1)],
      ["closed/s", fmt(status.connections.closedPerSecond, 1)],
      ["requests in flight", fmt(status.connections.requestsInFlight)],
      ["backend connections", fmt(status.connections.backend.open) + (status.connections.backend.limit === null ? "" : " of " + fmt(status.connections.backend.limit))],
      ...(status.connections.backend.refused > 0 ? [["backend connections refused", fmt(status.connections.backend.refused)]] : []),
      ["admission rejected", fmt(status.admission.rejected)],
      ["connections refused", fmt(status.admission.connections.refused)],
      ...(status.admission.connections.adaptive ? [["admission rate", fmt(status.admission.connections.adaptive.ratePerSecond) + "/s, target " + fmt(status.admission.connections.adaptive.targetDelayMs) + " ms" + (status.admission.connections.adaptive.protectingEstablished ? " (open connections busy)" : "")]] : []),
      ["waiting in the listen queue", fmt(status.admission.connections.listenQueue) + " of " + fmt(status.admission.connections.listenQueueCapacity)],
      ["WebSockets open", fmt(status.webSockets.open)],
      ["WebSocket bytes buffered", fmt(status.webSockets.bufferedBytes)],
      ["scheduler delay p99", fmt(status.scheduler.delayP99Ms, 2) + " ms"],
      ["pending work items", fmt(status.scheduler.pendingWorkItems)],
      ["memory (working set)", fmt(status.memory.workingSetBytes / 1048576, 1) + " MiB"],
      ["GC heap", fmt(status.memory.gcHeapBytes / 1048576, 1) + " of " + fmt(status.memory.gcHeapLimitBytes / 1048576, 0) + " MiB" + (status.memory.refusingNew ? " (new clients held back)" : "")],
      ["given back after drops", fmt(status.memory.returnedBytes / 1048576, 1) + " MiB in " + fmt(status.memory.compactions)],
    ];
    const target = $("strip");
    target.replaceChildren(...items.map(([label, value]) => {
      const div = document.createElement("div");
      const b = document.createElement("b");
      b.textContent = value;
      div.append(label + ": ", b);
      return div;
    }));
  }

  // Each cluster's table and each destination's row are built once and updated in place on every refresh (rebuilding
  // them all took the browser seconds per refresh with 3,000 clusters); a cluster or destination that is gone is removed.
  const views = new Map();

  function clusterView(id) {
    const section = document.createElement("section");
    const h2 = document.createElement("h2");
    h2.textContent = "Cluster " + id;
    const table = document.createElement("table");
    const caption = document.createElement("caption");
    table.appendChild(caption);
    const head = table.createTHead().insertRow();
    for (const title of ["Destination", "Health", "Weight", "In flight", "Req/s", "Requests", "Errors", "p50 (ms)", "p99 (ms)", "Last minute"]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = title;
      head.appendChild(th);
    }
    section.append(h2, table);
    return { section, caption, body: table.createTBody(), rows: new Map() };
  }

  function destinationRow(id) {
    const row = document.createElement("tr");
    row.dataset.destination = id;
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = id;
    row.appendChild(name);
    const cells = {};
    for (const key of ["health", "weight", "inFlight", "requestsPerSecond", "requests", "errors", "p50", "p99"]) cells[key] = cell(row, "");
    cells.requests.className = "requests";
    const spark = sparkline();
    cell(row, "").appendChild(spark.svg);
    return { row, name, cells, spark };
  }

  function updateRow(view, d) {
    setAttribute(view.name, "title", d.address);
    const health = d.ejected ? "Ejected" : d.health;
    setText(view.cells.health, health);
    setAttribute(view.cells.health, "class", "health " + (d.ejected ? "Unhealthy" : d.health));
    setText(view.cells.weight, fmt(d.weight));
    setText(view.cells.inFlight, fmt(d.inFlight));
    setText(view.cells.requestsPerSecond, fmt(d.requestsPerSecond, 2));
    setText(view.cells.requests, fmt(d.requests));
    setText(view.cells.errors, fmt(d.errors));
    setText(view.cells.p50, fmt(d.latencyP50Ms, 1));
    setText(view.cells.p99, fmt(d.latencyP99Ms, 1));
    const { max, points } = sparkPoints(d.requestsLastMinute);
    setAttribute(view.spark.line, "points", points);
    setAttribute(view.spark.svg, "aria-label", "requests per second over the last minute, up to " + max);
  }

  function updateClusters(clusters) {
    const seen = new Set();
    const sections = [];
    for (const cluster of clusters) {
      seen.add(cluster.id);
      let view = views.get(cluster.id);
      if (!view) views.set(cluster.id, view = clusterView(cluster.id));
      setText(view.caption, cluster.loadBalancingPolicy + ", " + cluster.destinations.length + " destination(s)");
      const rows = [];
      const present = new Set();
      for (const d of cluster.destinations) {
        present.add(d.id);
        let row = view.rows.get(d.id);
        if (!row) view.rows.set(d.id, row = destinationRow(d.id));
        updateRow(row, d);
        rows.push(row.row);
      }
      for (const id of [...view.rows.keys()]) if (!present.has(id)) view.rows.delete(id);
      order(view.body, rows);
      sections.push(view.section);
    }
    for (const id of [...views.keys()]) if (!seen.has(id)) views.delete(id);
    order($("clusters"), sections);
  }

  async function refresh() {
    try {
      const response = await fetch("/status.json", { cache: "no-store" });
      const status = await response.json();
      $("revision").textContent = "(configuration revision " + status.revision + (status.rejectedReload ? ", a reload is rejected" : "") + ")";
      $("draining").style.display = status.draining ? "block" : "none";
      strip(status);
      updateClusters(status.clusters);
      $("error").textContent = "";
      document.body.dataset.refreshed = String((Number(document.body.dataset.refreshed) || 0) + 1);
    } catch (e) {
      $("error").textContent = "Could not read /status.json: " + e.message;
    }
  }

  // The next refresh is 2 s after this one ends, not every 2 s: over a slow link (a port-forward, a VPN) a refresh
  // that takes longer than that would otherwise start another, and they would pile up, each costing the gateway a
  // /status.json.
  async function loop() {
    await refresh();
    setTimeout(loop, 2000);
  }

  loop();
})();
