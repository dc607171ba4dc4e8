// The live operations dashboard. The panes come from the snapshot endpoints (the domains' tables);
// the server pushes bus events and metric samples over Server-Sent Events, and a pane is reloaded
// shortly after an event that changes it passes by. Nothing shown is inferred in the browser.

const MAX_EVENTS = 500;
const MAX_ROWS = 300;
const SAMPLES = 90;
const SEVERITIES = ["critical", "major", "minor", "warning", "indeterminate"];
const ACK_TIMEOUT_MS = 20000;

// Which panes an event on each topic can change.
const PANES_BY_TOPIC = {
  "oss.alarms": ["alarms", "network"],
  "oss.trouble-tickets": ["tickets", "alarms"],
  "oss.work-orders": ["tickets"],
  "oss.service-health": ["services", "network"],
  "oss.service-inventory": ["services", "network"],
  "oss.resource-inventory": ["network"],
  "bss.product-orders": ["orders"],
  "bss.invoices": ["invoices"],
};

const PANES = {
  alarms: ["/live/alarms", renderAlarms],
  tickets: ["/live/tickets", renderTickets],
  services: ["/live/services", renderServices],
  network: ["/live/network", renderNetwork],
  orders: ["/live/orders", renderOrders],
  invoices: ["/live/invoices", renderInvoices],
};

const state = {
  panes: {},
  bus: { topics: [], groups: [], event_types: [] },
  owners: {},
  events: [],
  samples: [],
  pendingAcks: new Map(),
  expanded: new Set(),
  lastSeq: 0,
};

const $ = (id) => document.getElementById(id);

// DOM helpers ---------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

function svg(tag, attrs, ...children) {
  return build(document.createElementNS("http://www.w3.org/2000/svg", tag), attrs, children);
}

function build(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function badge(value, kind = "sev") {
  return el("span", { class: `badge ${kind}-${value}` }, value);
}

function empty(text) {
  return el("p", { class: "empty" }, text);
}

function table(headers, rows) {
  return el(
    "table",
    { class: "list" },
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows),
  );
}

// Formatting ----------------------------------------------------------------------------------

function clock(iso, millis = false) {
  const d = new Date(iso);
  const text = d.toLocaleTimeString([], { hour12: false });
  return millis ? `${text}.${String(d.getMilliseconds()).padStart(3, "0")}` : text;
}

function ago(iso) {
  return duration((Date.now() - new Date(iso).getTime()) / 1000);
}

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

// Amounts arrive in minor units; Intl knows each currency's ISO 4217 minor digits (0 for JPY, 3 for KWD).
function money(minor, currency) {
  try {
    const format = new Intl.NumberFormat(undefined, { style: "currency", currency });
    return format.format(minor / 10 ** format.resolvedOptions().maximumFractionDigits);
  } catch {
    return `${minor} ${currency} (minor units)`;
  }
}

function rate(value) {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

function short(resourceId) {
  return resourceId.replace(/^(NODE|LINK|SITE)-/, "");
}

// Fetching and refreshing ---------------------------------------------------------------------

async function getJSON(path) {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

const refreshing = {};

// Reload a pane soon, at most one reload in flight per pane and one more queued behind it.
function schedule(pane, delay = 250) {
  const slot = (refreshing[pane] ||= { timer: null, running: false, again: false });
  if (slot.running) {
    slot.again = true;
    return;
  }
  if (slot.timer) return;
  slot.timer = setTimeout(async () => {
    slot.timer = null;
    slot.running = true;
    try {
      const [path, render] = PANES[pane];
      render(await getJSON(path));
      renderSummary();
    } catch (error) {
      console.warn(`refreshing ${pane} failed`, error);
    } finally {
      slot.running = false;
      if (slot.again) {
        slot.again = false;
        schedule(pane, delay);
      }
    }
  }, delay);
}

function refreshAll() {
  Object.keys(PANES).forEach((pane) => schedule(pane, 0));
}

async function loadSnapshot() {
  const snap = await getJSON("/live/snapshot");
  state.bus = snap.bus;
  state.owners = Object.fromEntries(snap.bus.topics.map((t) => [t.name, t.owner]));
  fillFilters();
  state.samples = snap.metrics.samples.slice(-SAMPLES);
  for (const pane of Object.keys(PANES)) PANES[pane][1](snap[pane]);
  renderMetrics();
  renderSummary();
}

// Summary -------------------------------------------------------------------------------------

function renderSummary() {
  const { alarms, tickets, services, orders } = state.panes;
  const chips = [];
  if (alarms) {
    for (const sev of SEVERITIES) {
      const n = alarms.by_severity[sev] || 0;
      if (n || sev === "critical" || sev === "major") {
        chips.push(el("li", { class: `chip sev-${sev}${n ? "" : " zero"}` }, el("b", {}, n), ` ${sev}`));
      }
    }
  }
  if (tickets) chips.push(el("li", { class: "chip" }, el("b", {}, tickets.open), " open tickets"));
  if (services) {
    chips.push(el("li", { class: `chip${services.down ? " alert" : ""}` }, el("b", {}, services.down), " services down"));
    chips.push(el("li", { class: "chip" }, el("b", {}, services.reroutes.length), " rerouted"));
  }
  if (orders) chips.push(el("li", { class: "chip" }, el("b", {}, orders.in_flight), " orders in flight"));
  const last = state.samples[state.samples.length - 1];
  if (last) {
    const total = Object.values(last.rates).reduce((a, b) => a + b, 0);
    chips.push(el("li", { class: "chip" }, el("b", {}, rate(total)), " events/s"));
  }
  $("summary").replaceChildren(...chips);
}

// Alarm console -------------------------------------------------------------------------------

function renderAlarms(view) {
  state.panes.alarms = view;
  for (const alarm of allAlarms(view)) {
    if (alarm.ack_state === "acknowledged") state.pendingAcks.delete(alarm.id);
  }
  $("alarms-note").textContent = `${view.open} open · ${view.unacknowledged} unacknowledged`;
  if (!view.alarms.length) {
    $("alarms").replaceChildren(empty("No open alarms."));
    return;
  }
  const groups = [];
  const order = [...SEVERITIES, ...new Set(view.alarms.map((a) => a.perceived_severity))];
  for (const sev of new Set(order)) {
    const roots = view.alarms.filter((a) => a.perceived_severity === sev);
    if (!roots.length) continue;
    const count = roots.reduce((n, a) => n + 1 + a.symptoms.length, 0);
    groups.push(
      el(
        "div",
        { class: "sev-group", dataset: { severity: sev } },
        el("div", { class: "sev-heading" }, badge(sev), ` ${count} alarm${count === 1 ? "" : "s"}`),
        roots.map((root) =>
          el(
            "div",
            { class: "alarm-family" },
            alarmRow(root, false),
            root.symptoms.length ? el("div", { class: "symptoms" }, root.symptoms.map((s) => alarmRow(s, true))) : null,
          ),
        ),
      ),
    );
  }
  $("alarms").replaceChildren(...groups);
}

function allAlarms(view) {
  return view.alarms.flatMap((a) => [a, ...a.symptoms]);
}

function alarmRow(alarm, isSymptom) {
  const acked = alarm.ack_state === "acknowledged";
  const pending = !acked && state.pendingAcks.has(alarm.id);
  const tags = [];
  if (!isSymptom && alarm.symptoms.length) {
    tags.push(el("span", { class: "tag root" }, `root cause of ${alarm.symptoms.length}`));
  }
  if (isSymptom) tags.push(el("span", { class: "tag" }, "symptom"));
  if (alarm.service_affecting) tags.push(el("span", { class: "tag sa" }, "service affecting"));
  return el(
    "div",
    {
      class: `alarm${isSymptom ? " symptom" : ""}${acked ? " acked" : ""}`,
      dataset: { alarmId: alarm.id, object: alarm.alarmed_object_id, ackState: alarm.ack_state },
    },
    el("span", { class: `sev-bar sev-${alarm.perceived_severity}` }),
    el(
      "div",
      { class: "alarm-main" },
      el(
        "div",
        { class: "alarm-title" },
        isSymptom ? el("span", { class: "muted" }, "↳ ") : null,
        el("strong", { class: "mono" }, alarm.alarmed_object_id),
        " ",
        el("span", {}, alarm.probable_cause),
        alarm.specific_problem ? el("span", { class: "muted" }, ` · ${alarm.specific_problem}`) : null,
        " ",
        tags,
      ),
      el(
        "div",
        { class: "alarm-meta muted" },
        el("span", { class: "mono" }, alarm.id),
        ` · ${alarm.alarm_type} · raised ${clock(alarm.raised_at)} (${ago(alarm.raised_at)} ago)`,
        alarm.occurrences > 1 ? ` · ×${alarm.occurrences}` : "",
        alarm.ticket_id ? [" · ticket ", el("span", { class: "mono" }, alarm.ticket_id)] : "",
      ),
    ),
    el(
      "div",
      { class: "alarm-ack" },
      acked
        ? el("span", { class: "ack-state acked" }, "✓ acknowledged", el("small", {}, ` by ${alarm.ack_user_id || "?"}`))
        : el("span", { class: `ack-state${pending ? " pending" : ""}` }, pending ? "acknowledging…" : "unacknowledged"),
      acked
        ? null
        : el("button", { type: "button", class: "ack", disabled: pending, onclick: () => acknowledge(alarm.id) }, "Acknowledge"),
    ),
  );
}

async function acknowledge(alarmId) {
  const operator = $("operator").value.trim() || "dashboard";
  state.pendingAcks.set(alarmId, Date.now());
  if (state.panes.alarms) renderAlarms(state.panes.alarms);
  try {
    const response = await fetch(`/tmf-api/alarmManagement/v5/alarm/${encodeURIComponent(alarmId)}`, {
      method: "PATCH",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ ackState: "acknowledged", ackUserId: operator }),
    });
    if (!response.ok) {
      const detail = await response.text();
      throw new Error(`HTTP ${response.status} ${detail.slice(0, 200)}`);
    }
    // The new state arrives through the event flow (AlarmAcknowledged on oss.alarms).
    setTimeout(() => {
      if (state.pendingAcks.get(alarmId) && Date.now() - state.pendingAcks.get(alarmId) >= ACK_TIMEOUT_MS) {
        state.pendingAcks.delete(alarmId);
        toast(`No acknowledgement of ${alarmId} seen yet; it may still arrive.`);
        schedule("alarms", 0);
      }
    }, ACK_TIMEOUT_MS);
  } catch (error) {
    state.pendingAcks.delete(alarmId);
    toast(`Acknowledging ${alarmId} failed: ${error.message}`);
    if (state.panes.alarms) renderAlarms(state.panes.alarms);
  }
}

function toast(text) {
  const box = $("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (box.hidden = true), 6000);
}

// Tickets and work orders ---------------------------------------------------------------------

function renderTickets(view) {
  state.panes.tickets = view;
  $("tickets-note").textContent = `${view.open} open`;
  $("tickets").replaceChildren(
    view.tickets.length
      ? table(
          ["ticket", "severity", "prio", "status", "age"],
          view.tickets.map((t) =>
            el(
              "tr",
              { class: t.resolved_at ? "done" : "", dataset: { ticketId: t.id } },
              el("td", { title: t.name }, el("span", { class: "mono" }, t.id), el("small", { class: "muted block mono" }, t.alarmed_object_id)),
              el("td", {}, badge(t.severity)),
              el("td", {}, `P${t.priority}`),
              el("td", {}, badge(t.status, "st"), t.escalated_at ? el("span", { class: "tag warn" }, "escalated") : null),
              el("td", { class: "muted nowrap", title: `opened ${clock(t.created_at)}` }, t.resolved_at ? `resolved ${clock(t.resolved_at)}` : ago(t.created_at)),
            ),
          ),
        )
      : empty("No open tickets."),
  );
  const orders = view.work_orders;
  $("workorders-note").textContent = orders ? `${orders.filter((w) => !isFinished(w.state)).length} open` : "";
  $("workorders").replaceChildren(
    orders === null
      ? empty("Workforce is not installed.")
      : orders.length
        ? table(
            ["work order", "state", "prio", "technician", "skill", "due"],
            orders.map((w) =>
              el(
                "tr",
                { class: isFinished(w.state) ? "done" : "" },
                el("td", { class: "mono", title: `ticket ${w.ticket_id}, ${w.resource_id}` }, w.id),
                el("td", {}, badge(w.state, "st")),
                el("td", {}, `P${w.priority}`),
                el("td", { class: "mono" }, w.technician_id || "—"),
                el("td", {}, w.required_skill),
                el(
                  "td",
                  { class: `nowrap ${w.sla_breached ? "late" : "muted"}` },
                  w.sla_breached ? "SLA breached" : dueIn(w.due_at),
                ),
              ),
            ),
          )
        : empty("No work orders."),
  );
}

function isFinished(workOrderState) {
  return ["completed", "failed", "cancelled"].includes(workOrderState);
}

function dueIn(iso) {
  const seconds = (new Date(iso).getTime() - Date.now()) / 1000;
  return seconds >= 0 ? `in ${duration(seconds)}` : `${duration(-seconds)} late`;
}

// Service health ------------------------------------------------------------------------------

function renderServices(view) {
  state.panes.services = view;
  $("services-note").textContent = `${view.down} of ${view.services} services down`;
  $("outages").replaceChildren(
    view.outages.length
      ? table(
          ["service", "failed resource", "down for", "customers"],
          view.outages.map((o) =>
            el(
              "tr",
              { class: o.restored_at ? "done" : "", dataset: { serviceId: o.service_id } },
              el("td", { title: o.service_name }, el("span", { class: "mono" }, o.service_id), el("small", { class: "muted block" }, o.service_name)),
              el("td", { class: "mono" }, o.resource_id),
              el(
                "td",
                { class: "muted nowrap", title: `down since ${clock(o.started_at)}` },
                o.restored_at
                  ? `restored after ${duration((new Date(o.restored_at) - new Date(o.started_at)) / 1000)}`
                  : ago(o.started_at),
              ),
              el("td", { class: "mono", title: o.customer_ids.join(", ") }, o.customer_ids.join(", ") || "—"),
            ),
          ),
        )
      : empty("No service is down."),
  );
  $("reroutes").replaceChildren(
    view.reroutes.length
      ? table(
          ["service", "avoids", "path now"],
          view.reroutes.map((r) =>
            el(
              "tr",
              { dataset: { serviceId: r.service_id } },
              el("td", { title: r.service_name }, el("span", { class: "mono" }, r.service_id)),
              el(
                "td",
                {},
                r.avoided.map((id) =>
                  el("span", { class: `tag ${r.still_failed.includes(id) ? "bad" : "ok"}`, title: r.still_failed.includes(id) ? "still failed" : "repaired" }, short(id)),
                ),
              ),
              el("td", { class: "mono path", title: r.current_path.join(" → ") }, r.current_path.map(short).join(" → ")),
            ),
          ),
        )
      : empty("Every service runs on its planned path."),
  );
}

// Network -------------------------------------------------------------------------------------

function renderNetwork(view) {
  state.panes.network = view;
  const nodeSite = {};
  view.sites.forEach((s) => s.nodes.forEach((n) => (nodeSite[n.id] = s.id)));
  const { pos, labels, boxes } = layout(siteOrder(view, nodeSite));
  const links = view.links
    .filter((l) => pos[l.a_end] && pos[l.z_end])
    .map((l) => {
      const [x1, y1] = pos[l.a_end];
      const [x2, y2] = pos[l.z_end];
      const s = l.state;
      return svg(
        "g",
        { class: `link sev-${s.severity || "ok"}${s.services_down ? " down" : ""}`, dataset: { resource: l.id } },
        svg("title", {}, resourceTitle(l.id, l.name, s)),
        svg("line", { x1, y1, x2, y2, class: "hit" }),
        svg("line", { x1, y1, x2, y2 }),
        s.severity ? linkLabel([x1, y1], [x2, y2], resourceLabel(l.id, s)) : null,
      );
    });
  const attachments = view.sites.flatMap((site) => site.nodes.flatMap((n) => n.attachments.map((a) => attachmentMark(a, pos[n.id], pos[a.id]))));
  const nodes = view.sites.flatMap((site) =>
    site.nodes.map((n) => {
      const [x, y] = pos[n.id];
      const right = labels[n.id] === "right";
      return svg(
        "g",
        { class: `node sev-${n.state.severity || "ok"}${n.state.services_down ? " down" : ""}`, dataset: { resource: n.id } },
        svg("title", {}, resourceTitle(n.id, n.name, n.state)),
        svg("circle", { cx: x, cy: y, r: 10 }),
        svg(
          "text",
          { x: right ? x + 16 : x, y: right ? y + 4 : y + 25, class: "node-label", "text-anchor": right ? "start" : "middle" },
          resourceLabel(n.id, n.state),
        ),
      );
    }),
  );
  // Site names go on top of everything, links included.
  const sites = boxes.map(({ x, y, w, h }) => svg("rect", { x, y, width: w, height: h, rx: 9, class: "site" }));
  const names = boxes.map(({ site, x, y }) => svg("text", { x: x + 9, y: y + 14, class: "site-label" }, site.name));
  const minX = Math.min(...boxes.map((b) => b.x)) - 8;
  const minY = Math.min(...boxes.map((b) => b.y)) - 8;
  const maxX = Math.max(...boxes.map((b) => b.x + b.w)) + 8;
  const maxY = Math.max(...boxes.map((b) => b.y + b.h)) + 8;
  $("network").replaceChildren(
    svg(
      "svg",
      { viewBox: `${minX} ${minY} ${maxX - minX} ${maxY - minY}`, role: "img", "aria-label": "Network topology" },
      sites,
      links,
      attachments,
      nodes,
      names,
    ),
  );
}

// A port (square) or radio cell (triangle), tied to its node by a thin line.
function attachmentMark(a, [nx, ny], [x, y]) {
  const s = a.state;
  const shape =
    a.kind === "cell"
      ? svg("polygon", { points: `${x},${y - 6} ${x + 6},${y + 5} ${x - 6},${y + 5}` })
      : svg("rect", { x: x - 4.5, y: y - 4.5, width: 9, height: 9, rx: 1.5 });
  return svg(
    "g",
    { class: `attachment sev-${s.severity || "ok"}${s.services_down ? " down" : ""}`, dataset: { resource: a.id } },
    svg("title", {}, resourceTitle(a.id, a.name, s)),
    svg("line", { x1: nx, y1: ny, x2: x, y2: y }),
    shape,
  );
}

// A link's label beside its middle, on the side facing up (or right, for an upright link).
function linkLabel([x1, y1], [x2, y2], text) {
  const length = Math.hypot(x2 - x1, y2 - y1) || 1;
  let [nx, ny] = [-(y2 - y1) / length, (x2 - x1) / length];
  if (ny > 0 || (ny === 0 && nx < 0)) [nx, ny] = [-nx, -ny];
  const upright = Math.abs(nx) > 0.9;
  return svg(
    "text",
    {
      x: (x1 + x2) / 2 + nx * 8,
      y: (y1 + y2) / 2 + ny * 8 + (upright ? 4 : 0),
      class: "link-label",
      "text-anchor": upright ? (nx > 0 ? "start" : "end") : "middle",
    },
    text,
  );
}

// Sites evenly around an ellipse; a site's nodes along the radius, its first node innermost.
function layout(sites) {
  const [rx, ry] = [230, 150];
  const pos = {};
  const labels = {};
  const boxes = [];
  sites.forEach((site, i) => {
    const angle = -Math.PI / 2 + (i * 2 * Math.PI) / sites.length;
    const [dx, dy] = [Math.cos(angle), Math.sin(angle)];
    const vertical = Math.abs(dy) > Math.abs(dx);
    const step = vertical ? 50 : 118;
    const k = site.nodes.length;
    const extents = [];
    site.nodes.forEach((node, j) => {
      const offset = (j - (k - 1) / 2) * step;
      const [x, y] = [dx * (rx + offset), dy * (ry + offset)];
      const width = resourceLabel(node.id, node.state).length * 7;
      pos[node.id] = [x, y];
      labels[node.id] = vertical ? "right" : "below";
      extents.push([x - 12, y - 12, x + 12, y + 12]);
      extents.push(vertical ? [x + 14, y - 8, x + 16 + width, y + 8] : [x - width / 2, y + 12, x + width / 2, y + 30]);
      // Ports and cells fan out on the node's outer side.
      const m = node.attachments.length;
      const spread = Math.min(Math.PI * 0.6, 0.5 * (m - 1));
      node.attachments.forEach((a, n) => {
        const theta = angle + (m > 1 ? -spread / 2 + (n * spread) / (m - 1) : 0);
        const [ax, ay] = [x + Math.cos(theta) * 26, y + Math.sin(theta) * 26];
        pos[a.id] = [ax, ay];
        extents.push([ax - 7, ay - 7, ax + 7, ay + 7]);
      });
    });
    if (!extents.length) extents.push([dx * rx - 20, dy * ry - 10, dx * rx + 20, dy * ry + 10]);
    const x = Math.min(...extents.map((e) => e[0])) - 10;
    const y = Math.min(...extents.map((e) => e[1])) - 24;
    const w = Math.max(Math.max(...extents.map((e) => e[2])) + 10 - x, site.name.length * 6.2 + 18);
    const h = Math.max(...extents.map((e) => e[3])) + 8 - y;
    boxes.push({ site, x, y, w, h });
  });
  return { pos, labels, boxes };
}

function resourceLabel(id, s) {
  return short(id) + (s.services_down ? ` ↓${s.services_down}` : "");
}

function resourceTitle(id, name, s) {
  const alarms = s.open_alarms ? `${s.severity} · ${s.open_alarms} open alarm${s.open_alarms === 1 ? "" : "s"}` : "no open alarm";
  const disabled =
    (s.operational_state === "disable" ? " · disabled" : "") +
    (s.administrative_state === "locked" ? " · locked for maintenance" : "");
  const down = s.services_down ? `, ${s.services_down} down because of it` : "";
  return `${id} — ${name}\n${alarms}${disabled}\n${s.services} service${s.services === 1 ? "" : "s"} placed on it${down}`;
}

// Order the sites around the ring so that as few links between sites as possible cross.
function siteOrder(view, nodeSite) {
  const sites = view.sites;
  const edges = view.links
    .map((l) => [nodeSite[l.a_end], nodeSite[l.z_end]])
    .filter(([a, b]) => a && b && a !== b);
  if (sites.length < 4 || sites.length > 8) return sites;
  let best = sites;
  let bestCrossings = Infinity;
  for (const rest of permutations(sites.slice(1))) {
    const ring = [sites[0], ...rest];
    const at = Object.fromEntries(ring.map((s, i) => [s.id, i]));
    const crossings = countCrossings(edges.map(([a, b]) => [at[a], at[b]]));
    if (crossings < bestCrossings) {
      best = ring;
      bestCrossings = crossings;
    }
  }
  return best;
}

function* permutations(items) {
  if (items.length <= 1) {
    yield items;
    return;
  }
  for (let i = 0; i < items.length; i++) {
    for (const rest of permutations([...items.slice(0, i), ...items.slice(i + 1)])) yield [items[i], ...rest];
  }
}

function countCrossings(chords) {
  let n = 0;
  for (let i = 0; i < chords.length; i++) {
    for (let j = i + 1; j < chords.length; j++) {
      const [a, b] = [Math.min(...chords[i]), Math.max(...chords[i])];
      const [c, d] = chords[j];
      if (new Set([a, b, c, d]).size < 4) continue;
      if ((a < c && c < b) !== (a < d && d < b)) n++;
    }
  }
  return n;
}

// Orders and invoices -------------------------------------------------------------------------

function renderOrders(view) {
  state.panes.orders = view;
  $("orders-note").textContent = `${view.in_flight} in flight`;
  $("orders").replaceChildren(
    view.orders.length
      ? table(
          ["order", "state", "customer", "offering", "sites", "service or reason", "updated"],
          view.orders.map((o) =>
            el(
              "tr",
              { class: ["completed", "failed", "cancelled", "rejected"].includes(o.state) ? "done" : "" },
              el("td", { class: "mono" }, o.id),
              el("td", {}, badge(o.state, "st")),
              el("td", { class: "mono" }, o.customer_id),
              el("td", { class: "mono" }, o.offering_id),
              el("td", { class: "mono" }, `${short(o.a_site_id)} → ${short(o.z_site_id)}`),
              o.reason
                ? el("td", { class: "late", title: o.service_id || "" }, o.reason)
                : el("td", { class: "mono" }, o.service_id || "—"),
              el("td", { class: "muted" }, `${ago(o.updated_at)} ago`),
            ),
          ),
        )
      : empty("No orders in the last hour."),
  );
}

function renderInvoices(view) {
  state.panes.invoices = view;
  $("invoices").replaceChildren(
    view.invoices.length
      ? table(
          ["bill", "account", "period", "total", "paid", "state", "due"],
          view.invoices.map((i) =>
            el(
              "tr",
              { title: i.id },
              el("td", { class: "mono" }, `#${i.bill_number}`),
              el("td", { class: "mono" }, i.account_id),
              el("td", { class: "muted" }, `${i.period_start} – ${i.period_end}`),
              el("td", { class: "num" }, money(i.tax_included_minor, i.currency)),
              el("td", { class: "num" }, money(i.paid_minor, i.currency)),
              el("td", {}, badge(i.state, "st"), i.dunned ? el("span", { class: "tag warn" }, "dunned") : null),
              el("td", { class: "muted" }, i.payment_due_date),
            ),
          ),
        )
      : empty("No invoices issued yet."),
  );
}

// Metrics -------------------------------------------------------------------------------------

function sparkline(values, { width = 150, height = 28, cls = "" } = {}) {
  const max = Math.max(1, ...values.filter((v) => v !== null));
  const dx = width / (SAMPLES - 1);
  const x0 = width - (values.length - 1) * dx;
  const points = values.map((v, i) => [x0 + i * dx, height - 2 - ((v ?? 0) / max) * (height - 4)]);
  const line = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
  const area = points.length ? `${points[0][0].toFixed(1)},${height} ${line} ${points[points.length - 1][0].toFixed(1)},${height}` : "";
  return svg(
    "svg",
    { class: `spark ${cls}`, viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", "aria-hidden": "true" },
    svg("polygon", { points: area, class: "area" }),
    svg("polyline", { points: line }),
  );
}

function renderMetrics() {
  renderLag();
  renderRates();
}

function renderLag() {
  const last = state.samples[state.samples.length - 1];
  const rows = state.bus.groups.map((g) => {
    const lag = last?.lags[g.name];
    const values = state.samples.map((s) => s.lags[g.name]?.lag ?? null);
    const level = !lag ? "" : !lag.committed ? "idle" : lag.lag > 1000 ? "bad" : lag.lag > 0 ? "warn" : "ok";
    return el(
      "div",
      { class: `metric ${level}`, dataset: { group: g.name }, title: `${g.name} consumes ${g.consumes.join(", ")}` },
      el("span", { class: "metric-name" }, el("i", { class: `dot owner-${g.domain}` }), g.name),
      sparkline(values, { cls: level }),
      el("span", { class: "metric-value" }, lagText(lag)),
    );
  });
  $("lag").replaceChildren(...rows);
}

function lagText(lag) {
  if (!lag) return "…";
  if (lag.committed) return lag.lag.toLocaleString();
  return el("small", { title: "The group has committed no offset yet" }, lag.lag ? `${lag.lag.toLocaleString()} · no commit` : "idle");
}

function renderRates() {
  const samples = state.samples;
  const last = samples[samples.length - 1];
  const totals = samples.map((s) => Object.values(s.rates).reduce((a, b) => a + b, 0));
  const peak = Math.max(0, ...totals);
  $("total-rate").replaceChildren(
    el("div", { class: "total-figure" }, el("b", {}, last ? rate(totals[totals.length - 1]) : "…"), " events/s across all topics", el("small", { class: "muted" }, ` · peak ${rate(peak)}`)),
    sparkline(totals, { width: 400, height: 54, cls: "total" }),
  );
  const active = state.bus.topics
    .map((t) => ({ topic: t, values: samples.map((s) => s.rates[t.name] ?? 0) }))
    .filter(({ values }) => values.some((v) => v > 0))
    .sort((a, b) => b.values[b.values.length - 1] - a.values[a.values.length - 1] || a.topic.name.localeCompare(b.topic.name));
  const quiet = state.bus.topics.length - active.length;
  $("rates").replaceChildren(
    ...active.map(({ topic, values }) =>
      el(
        "div",
        { class: "metric", dataset: { topic: topic.name } },
        el("span", { class: "metric-name" }, el("i", { class: `dot owner-${topic.owner}` }), topic.name),
        sparkline(values, { cls: `owner-${topic.owner}` }),
        el("span", { class: "metric-value" }, `${rate(values[values.length - 1])}/s`),
      ),
    ),
    el("p", { class: "muted small" }, `${quiet} other topic${quiet === 1 ? "" : "s"} quiet for the last ${Math.round((samples.length * 2) / 60) || 1} min`),
  );
}

// Event stream --------------------------------------------------------------------------------

function fillFilters() {
  const topic = $("f-topic");
  const type = $("f-type");
  topic.replaceChildren(el("option", { value: "" }, "all topics"), ...state.bus.topics.map((t) => el("option", { value: t.name }, t.name)));
  type.replaceChildren(el("option", { value: "" }, "all types"), ...state.bus.event_types.map((t) => el("option", { value: t }, t)));
}

function filters() {
  return {
    topic: $("f-topic").value,
    type: $("f-type").value,
    severity: $("f-severity").value,
    text: $("f-text").value.trim().toLowerCase(),
  };
}

function matches(event, f) {
  if (event.kind === "gap") return !f.topic && !f.type && !f.severity && !f.text;
  if (f.topic && event.topic !== f.topic) return false;
  if (f.type && event.type !== f.type) return false;
  if (f.severity && event.severity !== f.severity) return false;
  if (f.text) {
    event.haystack ||= [event.topic, event.type, event.key, event.id, event.subject, event.summary].join(" ").toLowerCase();
    if (!event.haystack.includes(f.text)) return false;
  }
  return true;
}

let streamDirty = false;

function renderStreamSoon() {
  if (streamDirty) return;
  streamDirty = true;
  setTimeout(() => requestAnimationFrame(renderStream), 200);
}

function renderStream() {
  streamDirty = false;
  if ($("f-pause").checked) return;
  const f = filters();
  const shown = [];
  let matched = 0;
  for (const event of state.events) {
    if (!matches(event, f)) continue;
    matched++;
    if (shown.length < MAX_ROWS) shown.push(event);
  }
  $("stream-note").textContent = `${matched} of the last ${state.events.length} events${matched > MAX_ROWS ? `, newest ${MAX_ROWS} shown` : ""}`;
  $("stream").replaceChildren(
    ...(shown.length ? shown.flatMap(streamRow) : [el("tr", {}, el("td", { colspan: 6, class: "empty" }, state.events.length ? "No event matches the filters." : "Waiting for events…"))]),
  );
}

function gapText(event) {
  const count = event.skipped == null ? "some" : event.skipped.toLocaleString();
  if (event.reason === "behind") return `… ${count} events not shown: this page fell behind (rates are exact; see Throughput)`;
  if (event.reason === "disconnected") {
    return event.skipped == null ? "… events may have been missed while the server restarted" : `… ${count} events missed while disconnected`;
  }
  return `… ${count} events skipped in a burst (rates are exact; see Throughput)`;
}

function streamRow(event) {
  if (event.kind === "gap") {
    return [el("tr", { class: "gap" }, el("td", { colspan: 6 }, gapText(event)))];
  }
  const owner = state.owners[event.topic] || "other";
  const open = state.expanded.has(event.seq);
  const row = el(
    "tr",
    {
      class: `event${open ? " open" : ""}${event.topic.startsWith("dlq.") ? " dead" : ""}`,
      dataset: { type: event.type, topic: event.topic },
      onclick: () => {
        if (state.expanded.has(event.seq)) state.expanded.delete(event.seq);
        else state.expanded.add(event.seq);
        renderStream();
      },
    },
    el("td", { class: "mono muted nowrap" }, clock(event.time, true)),
    el("td", { class: "nowrap" }, el("i", { class: `dot owner-${owner}` }), event.topic),
    el("td", { class: "nowrap" }, event.type),
    el("td", {}, event.severity ? badge(event.severity) : ""),
    el("td", { class: "mono nowrap" }, event.key || ""),
    el("td", { class: "summary", title: event.summary }, event.summary),
  );
  if (!open) return [row];
  const detail = {
    id: event.id,
    topic: `${event.topic}[${event.partition}]@${event.offset}`,
    subject: event.subject,
    correlationid: event.correlationid,
    data: event.data,
  };
  return [row, el("tr", { class: "detail" }, el("td", { colspan: 6 }, el("pre", {}, JSON.stringify(detail, null, 2))))];
}

function addEvent(event) {
  if (event.seq <= state.lastSeq) return;
  state.lastSeq = event.seq;
  state.events.unshift(event);
  if (state.events.length > MAX_EVENTS) state.events.length = MAX_EVENTS;
  renderStreamSoon();
}

// Server push ---------------------------------------------------------------------------------

function connect() {
  const source = new EventSource("/live/events");
  const status = $("connection");
  let opened = false;
  source.addEventListener("open", () => {
    status.textContent = "live";
    status.className = "connection live";
    // The snapshot has just been loaded; after a reconnection the panes may be behind.
    if (opened) refreshAll();
    opened = true;
  });
  source.addEventListener("error", () => {
    status.textContent = "reconnecting…";
    status.className = "connection lost";
  });
  source.addEventListener("bus", (message) => {
    const event = JSON.parse(message.data);
    addEvent(event);
    for (const pane of PANES_BY_TOPIC[event.topic] || []) schedule(pane);
  });
  source.addEventListener("gap", (message) => {
    const gap = { kind: "gap", ...JSON.parse(message.data) };
    addEvent(gap);
    // Events this page did not get may have changed any pane.
    if (gap.reason === "behind" || gap.reason === "disconnected") refreshAll();
  });
  source.addEventListener("metrics", (message) => {
    state.samples.push(JSON.parse(message.data));
    if (state.samples.length > SAMPLES) state.samples.shift();
    renderMetrics();
    renderSummary();
  });
}

function setup() {
  const operator = $("operator");
  operator.value = localStorage.getItem("ossbss.operator") || operator.value;
  operator.addEventListener("change", () => localStorage.setItem("ossbss.operator", operator.value.trim()));
  for (const id of ["f-topic", "f-type", "f-severity", "f-pause"]) $(id).addEventListener("change", renderStream);
  $("f-text").addEventListener("input", renderStream);
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("f-clear").addEventListener("click", () => {
    state.events = [];
    state.expanded.clear();
    renderStream();
  });
  // Ages and recency windows move with the clock, not only with events.
  setInterval(refreshAll, 30000);
}

setup();
loadSnapshot()
  .catch((error) => toast(`Could not load the dashboard: ${error.message}`))
  .finally(() => {
    renderStream();
    connect();
  });
