// The status page: reads /status.json every 2 s and redraws the figures in place (no page reload).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const fmt = (n, digits = 0) => (n === null || n === undefined) ? "-" : Number(n).toLocaleString("en-US", { maximumFractionDigits: digits });

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function sparkline(values) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", "120");
    svg.setAttribute("height", "20");
    svg.setAttribute("role", "img");
    const max = Math.max(1, ...values);
    svg.setAttribute("aria-label", "requests per second over the last minute, up to " + max);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", "#2563eb");
    line.setAttribute("stroke-width", "1.5");
    line.setAttribute("points", values.map((v, i) => (i * 2) + "," + (19 - (v / max) * 18).toFixed(1)).join(" "));
    svg.appendChild(line);
    return svg;
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
      ...(status.admission.connections.adaptive ? [["admission rate", fmt(status.admission.connections.adaptive.ratePerSecond) + "/s"]] : []),
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

  function clusterTable(cluster) {
    const section = document.createElement("section");
    const h2 = document.createElement("h2");
    h2.textContent = "Cluster " + cluster.id;
    const table = document.createElement("table");
    const caption = document.createElement("caption");
    caption.textContent = cluster.loadBalancingPolicy + ", " + cluster.destinations.length + " destination(s)";
    table.appendChild(caption);
    const head = table.createTHead().insertRow();
    for (const title of ["Destination", "Health", "Weight", "In flight", "Req/s", "Requests", "Errors", "p50 (ms)", "p99 (ms)", "Last minute"]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = title;
      head.appendChild(th);
    }
    const body = table.createTBody();
    for (const d of cluster.destinations) {
      const row = body.insertRow();
      row.dataset.destination = d.id;
      const name = document.createElement("th");
      name.scope = "row";
      name.textContent = d.id;
      name.title = d.address;
      row.appendChild(name);
      cell(row, d.ejected ? "Ejected" : d.health, "health " + (d.ejected ? "Unhealthy" : d.health));
      cell(row, fmt(d.weight));
      cell(row, fmt(d.inFlight));
      cell(row, fmt(d.requestsPerSecond, 2));
      cell(row, fmt(d.requests)).className = "requests";
      cell(row, fmt(d.errors));
      cell(row, fmt(d.latencyP50Ms, 1));
      cell(row, fmt(d.latencyP99Ms, 1));
      cell(row, "").appendChild(sparkline(d.requestsLastMinute));
    }
    section.append(h2, table);
    return section;
  }

  async function refresh() {
    try {
      const response = await fetch("/status.json", { cache: "no-store" });
      const status = await response.json();
      $("revision").textContent = "(configuration revision " + status.revision + (status.rejectedReload ? ", a reload is rejected" : "") + ")";
      $("draining").style.display = status.draining ? "block" : "none";
      strip(status);
      $("clusters").replaceChildren(...status.clusters.map(clusterTable));
      $("error").textContent = "";
      document.body.dataset.refreshed = String((Number(document.body.dataset.refreshed) || 0) + 1);
    } catch (e) {
      $("error").textContent = "Could not read /status.json: " + e.message;
    }
  }

  refresh();
  setInterval(refresh, 2000);
})();
