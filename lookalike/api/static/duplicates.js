// Lookalike duplicate review: plain JS, no build step, no external resources.
"use strict";

const $ = (id) => document.getElementById(id);
const PER_PAGE = 10;
const MESSAGES = {
  401: "This needs the API key: type it above (reads: the read key; decisions: the write key).",
  403: "Decisions are switched off on this server (it has no LOOKALIKE_API_KEY).",
  404: "An image of this group is no longer in the index: run lookalike dedup again.",
  503: "The index is unavailable right now. Try again shortly.",
};
let page = 1;

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function headers(extra = {}) {
  const key = $("key").value.trim();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function call(url, options = {}) {
  const response = await fetch(url, { ...options, headers: headers({ Accept: "application/json", ...options.headers }) });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) {
    const reason = body && body.error ? body.error : response.statusText;
    throw new Error(`${MESSAGES[response.status] || "That did not work."} (${response.status}: ${reason})`);
  }
  return body;
}

function baseName(source, id) {
  if (!source || source.startsWith("upload:")) return id;
  return source.split(/[\\/]/).pop() || id;
}

function showThumbnail(img, id) {
  const url = `/images/${encodeURIComponent(id)}/thumbnail`;
  if (!$("key").value.trim()) { img.src = url; return; }
  fetch(url, { headers: headers() })
    .then((response) => (response.ok ? response.blob() : null))
    .then((blob) => { if (blob) img.src = URL.createObjectURL(blob); });
}

function members(group) {
  return [group.keep.id, ...group.duplicates.map((dup) => dup.id)];
}

async function decide(decisions, done) {
  try {
    await call("/duplicates/decisions", { method: "POST", body: JSON.stringify({ decisions }),
      headers: { "Content-Type": "application/json" } });
    await load();
    say(done);
  } catch (error) {
    say(error.message, true);
  }
}

function figure(entry, role, group) {
  const node = $("image").content.firstElementChild.cloneNode(true);
  const name = baseName(entry.source, entry.id);
  const img = node.querySelector("img");
  img.alt = name;
  showThumbnail(img, entry.id);
  node.dataset.id = entry.id;
  node.querySelector(".role").textContent = role;
  node.querySelector(".name").textContent = name;
  node.querySelector(".size").textContent = entry.width ? `${entry.width} × ${entry.height} px` : "size unknown";
  node.querySelector(".verdict").textContent = entry.verdict
    ? `${entry.verdict.replace("_", " ")}, ${(entry.similarity * 100).toFixed(1)} %` : "";
  if (entry.verdict) node.querySelector(".verdict").title = entry.reason || "";
  if (entry.also_in) node.querySelector(".verdict").textContent += ` · also a duplicate of ${entry.also_in.join(", ")}`;
  if (group.deleted.includes(entry.id)) node.classList.add("deleted");
  const keep = node.querySelector(".keep");
  keep.setAttribute("aria-label", `Keep ${name}`);
  keep.addEventListener("click", () => decide([{ decision: "keep", ids: members(group), keep: entry.id }],
    `Kept ${name}; the others are its duplicates.`));
  if (role.startsWith("suggested") || group.decision) keep.hidden = true;
  node.classList.toggle("keeper", role !== "duplicate");
  return node;
}

function render(group) {
  const node = $("group").content.firstElementChild.cloneNode(true);
  node.dataset.key = group.key;
  const decided = group.decision ? ` — decided: ${group.decision.decision.replace("_", " ")}` : "";
  node.querySelector("h2").textContent =
    `${baseName(group.keep.source, group.keep.id)} and ${group.duplicates.length} duplicate${group.duplicates.length === 1 ? "" : "s"}${decided}`;
  const gallery = node.querySelector(".gallery");
  gallery.append(figure(group.keep, group.decision ? "kept" : "suggested keeper", group));
  for (const dup of group.duplicates) gallery.append(figure(dup, "duplicate", group));
  const name = baseName(group.keep.source, group.keep.id);
  node.querySelector(".accept").addEventListener("click", () =>
    decide([{ decision: "keep", ids: members(group), keep: group.keep.id }], `Kept ${name}; the others are its duplicates.`));
  node.querySelector(".apart").addEventListener("click", () =>
    decide([{ decision: "not_duplicates", ids: members(group) }], `${name} and the rest are marked as not duplicates.`));
  if (group.decision) node.querySelector(".actions").hidden = true;
  return node;
}

let shown = [];
let loads = 0; // only the newest load may draw: clicking "next" twice quickly must not show page 2 last

async function load() {
  const mine = ++loads;
  const show = $("show").value;
  const body = await call(`/duplicates?status=${show}&page=${page}&per_page=${PER_PAGE}`);
  if (mine !== loads) return;
  shown = body.groups;
  $("groups").replaceChildren(...body.groups.map(render));
  const pages = Math.max(1, Math.ceil(body.total / PER_PAGE));
  $("where").textContent = `page ${page} of ${pages}`;
  $("previous").disabled = page <= 1;
  $("next").disabled = page >= pages;
  $("accept-page").disabled = show === "decided" || !body.groups.some((group) => !group.decision);
  $("run").textContent = body.run
    ? `Last run ${body.run.at}: ${body.run.images} images, ${body.run.groups} groups — ${body.counts.pending} to review, `
      + `${body.counts.keep} kept, ${body.counts.resolved} resolved.`
    : "No de-duplication run yet: run `lookalike dedup`, then reload this page.";
  if (!body.groups.length) say(show === "pending" ? "Nothing to review." : "No groups here.");
  else say(`${body.total} group${body.total === 1 ? "" : "s"}.`);
}

function wire() {
  $("key").value = new URLSearchParams(location.hash.slice(1)).get("key") || "";
  $("show").addEventListener("change", () => { page = 1; load().catch((error) => say(error.message, true)); });
  $("previous").addEventListener("click", () => { page -= 1; load().catch((error) => say(error.message, true)); });
  $("next").addEventListener("click", () => { page += 1; load().catch((error) => say(error.message, true)); });
  $("accept-page").addEventListener("click", () => {
    const open = shown.filter((group) => !group.decision);
    decide(open.map((group) => ({ decision: "keep", ids: members(group), keep: group.keep.id })),
      `Accepted ${open.length} group${open.length === 1 ? "" : "s"}.`);
  });
  $("controls").addEventListener("submit", (event) => event.preventDefault());
  load().catch((error) => say(error.message, true));
}

wire();
