// The maker-checker page (双人复核): the changes of the viewer's regions from GET /changes, filtered by
// status, and for an approver the approve / reject buttons (POST /changes/{id}/approve|reject). Every
// refusal is the API's own (its code and message in the page's language); the page never decides who may
// approve. The shared helpers (texts, token, API, DOM, yuan) are common.js's `Web`.
(() => {
  "use strict";
  const { $, t, el, api, setPageState, showMessage } = Web;
  const LABELS = JSON.parse($("labels").textContent);
  const STATUSES = ["PENDING", "APPROVED", "REJECTED", "EXPIRED", "ALL"];
  const READERS = ["clerk", "approver", "auditor"];
  const state = { me: null, rows: [], status: "PENDING", busy: false };

  // A refusal in a clerk's words: the API's message with its code, and what to do next where it helps.
  const ADVICE = ["APPROVAL_BY_MAKER", "CHANGE_EXPIRED", "CHANGE_ALREADY_DECIDED", "SCOPE_FORBIDDEN", "ROLE_FORBIDDEN"];
  function refusal(e) {
    if (e.status === 401) return t("token_invalid_again");
    const advice = ADVICE.includes(e.code) ? " " + t("advice_" + e.code) : "";
    return t("refusal", { message: e.text || t("failed"), code: e.code }) + advice;
  }

  // ------------------------------------------------------------------ formatting
  // Beijing time (UTC+8, no daylight saving) of an ISO instant: 2026-12-06 21:41.
  function beijing(iso) {
    const ms = Date.parse(iso || "");
    if (Number.isNaN(ms)) return iso || "—";
    return new Date(ms + 8 * 3600 * 1000).toISOString().slice(0, 16).replace("T", " ");
  }

  function timeLeft(iso) {
    const hours = (Date.parse(iso) - Date.now()) / 3600000;
    if (!(hours > 0)) return "";
    return hours < 1 ? t("left_under_hour") : t("left_hours", { n: Math.floor(hours) });
  }

  function money(fen) { return Number.isFinite(Number(fen)) ? Web.money(fen) : "—"; }

  // The amount a change moves: the correction or debit, or the refund an enrollment end implies.
  function amountOf(row) {
    const p = row.payload || {}, r = row.result || {};
    if (p.amount_fen !== undefined) return money(p.amount_fen);
    const refund = r.refund_owed_fen !== undefined ? r.refund_owed_fen : p.refund_owed_fen;
    if (refund !== undefined) return t("refund_owed", { amount: money(refund) });
    return "—";
  }

  function personsOf(row) {
    const shown = (row.persons || []).map((p) => `${p.name_masked} ${p.id_number_masked}`);
    if (!shown.length) return "—";
    if (row.kind === "MERGE_PERSONS" && shown.length === 2) return t("merge_persons", { kept: shown[0], merged: shown[1] });
    const more = (row.person_count || 0) > shown.length ? t("and_more", { n: row.person_count }) : "";
    return shown.join(t("list_sep")) + more;
  }

  // Codes the summary carries (DUPLICATE_RESOLVED, MEDICAL_EXPENSE...) in words, from the API's own labels.
  function summaryText(text) {
    return String(text || "").replace(/\b[A-Z][A-Z_]{2,}\b/g, (code) => LABELS.values[code] || code);
  }

  function regionLabel(code) {
    const scope = ((state.me && state.me.scopes) || []).find((s) => s.code === code);
    return scope ? scope.label : code;
  }

  function mine(row) {
    return String(row.proposed_by || "").trim().toLowerCase() === String(state.me.user || "").trim().toLowerCase();
  }

  const kindLabel = (row) => LABELS.kinds[row.kind] || row.kind_label;
  const statusLabel = (status, fallback) => LABELS.statuses[status] || fallback || status;

  // ------------------------------------------------------------------ the list
  function renderChips() {
    const counts = { ALL: state.rows.length };
    for (const row of state.rows) counts[row.status] = (counts[row.status] || 0) + 1;
    $("status-chips").replaceChildren(...STATUSES.map((s) => {
      const chip = el("button", { type: "button", class: "chip", "data-status": s, "aria-pressed": String(s === state.status) },
        (s === "ALL" ? t("status_all") : statusLabel(s)) + " ", el("span", { class: "n", text: String(counts[s] || 0) }));
      chip.addEventListener("click", () => { state.status = s; saveHash(); render(); });
      return chip;
    }));
  }

  function line(name, value, cls) {
    return [el("dt", { text: name }), el("dd", { text: value, class: cls || false })];
  }

  function card(row) {
    const p = row.payload || {};
    const lines = [
      ...line(t("field_persons"), personsOf(row), "idno-line"),
      ...line(t("field_amount"), amountOf(row), "amount"),
      ...line(t("field_summary"), summaryText(row.summary), "summary"),
    ];
    if ((row.kind === "MERGE_PERSONS" || row.kind === "WAIVE_LATE_FEE") && p.reason) lines.push(...line(t("field_reason"), p.reason, "reason-text"));
    lines.push(...line(t("field_region"), regionLabel(row.region_code)));
    lines.push(...line(t("field_maker"), row.proposed_by, "maker"));
    lines.push(...line(t("field_proposed_at"), t("beijing_time", { time: beijing(row.proposed_at) })));
    lines.push(...line(t("field_expires_at"), beijing(row.expires_at) + (row.status === "PENDING" ? timeLeft(row.expires_at) : ""), "expires"));
    if (row.decided_by) {
      const word = row.status === "REJECTED" ? t("word_rejected") : t("word_approved");
      lines.push(...line(t("field_decided"), t("decided_line", { who: row.decided_by, at: beijing(row.decided_at), word }), "decided"));
      // a rejection's reason is the change's note; an approval's optional note is kept with what it did
      const note = row.status === "REJECTED" ? row.note : (row.result || {}).note;
      if (note) lines.push(...line(row.status === "REJECTED" ? t("field_reject_reason") : t("field_note"), note, "note"));
    }
    const warnings = (p.warnings || []).length
      ? el("p", { class: "warn-line", text: t("check_warnings", { warnings: p.warnings.join(t("list_sep")) }) }) : null;
    return el("article", { class: "change-card " + row.status, "data-change-id": row.change_id, "data-status": row.status },
      el("header", { class: "change-head" },
        el("span", { class: "kind", text: kindLabel(row) }),
        el("span", { class: "change-status " + row.status, text: statusLabel(row.status, row.status_label) }),
        el("span", { class: "change-id", text: t("change_id", { id: row.change_id }) })),
      warnings,
      el("dl", { class: "change-lines" }, ...lines),
      actions(row));
  }

  // Approve / reject, for an approver, on a pending change somebody else proposed.
  function actions(row) {
    if (row.status !== "PENDING") return null;
    if (mine(row)) return el("p", { class: "hint own", text: t("own_change") });
    if (state.me.role !== "approver") return el("p", { class: "hint", text: t("awaiting_approver") });
    const id = "note-" + row.change_id.replace(/[^A-Za-z0-9_-]/g, "_");
    const input = el("input", { id, class: "decision-note", maxlength: "500", autocomplete: "off",
                                placeholder: t("note_placeholder") });
    const approve = el("button", { type: "button", class: "primary approve", text: t("approve") });
    const reject = el("button", { type: "button", class: "secondary danger reject", text: t("reject") });
    const status = el("p", { class: "decision-error error", role: "alert", hidden: true });
    approve.addEventListener("click", () => decide(row, "approve", input, status, [approve, reject]));
    reject.addEventListener("click", () => decide(row, "reject", input, status, [approve, reject]));
    return el("div", { class: "decision" }, el("label", { for: id, text: t("note_label") }), input,
      el("div", { class: "actions" }, approve, reject), status);
  }

  function render() {
    renderChips();
    let rows = state.status === "ALL" ? state.rows.slice() : state.rows.filter((r) => r.status === state.status);
    // Pending: the oldest first (it expires first); decided: the newest first.
    if (state.status !== "PENDING") rows = rows.reverse();
    $("changes-count").textContent = t("count", { n: rows.length });
    $("changes-empty").hidden = rows.length > 0;
    $("changes-empty").textContent = t("empty_" + state.status);
    $("change-list").replaceChildren(...rows.map(card));
  }

  async function load() {
    setPageState("loading");
    try {
      const answer = await api("/changes?status=ALL");
      state.rows = answer.changes || [];
      $("changes").hidden = false;
      render();
      setPageState("ready");
    } catch (e) {
      if (e.status === 401) return showLogin(refusal(e));
      showMessage(t("list_failed"), refusal(e));
      setPageState("error");
    }
  }

  async function decide(row, verb, input, status, buttons) {
    if (state.busy) return;
    const text = input.value.trim();
    status.hidden = true;
    if (verb === "reject" && !text) {
      status.textContent = t("reason_required");
      status.hidden = false;
      input.focus();
      return;
    }
    state.busy = true;
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const body = verb === "reject" ? { reason: text } : (text ? { note: text } : {});
      const answer = await api(`/changes/${encodeURIComponent(row.change_id)}/${verb}`, { method: "POST", json: body });
      notice(t("decided_notice", { kind: LABELS.kinds[answer.kind] || answer.kind_label, id: answer.change_id,
                                   status: statusLabel(answer.status, answer.status_label) }));
      await load();
    } catch (e) {
      status.textContent = refusal(e);
      status.hidden = false;
      buttons.forEach((b) => { b.disabled = false; });
      if (e.status === 401) showLogin(refusal(e));
      else if (e.code === "CHANGE_ALREADY_DECIDED" || e.code === "CHANGE_EXPIRED") {
        notice(refusal(e), true);
        await load();
      }
    } finally {
      state.busy = false;
    }
  }

  function notice(text, bad) {
    $("decision-status").textContent = text;
    $("decision-status").className = "notice-line" + (bad ? " bad" : "");
    $("decision-status").hidden = false;
  }

  // ------------------------------------------------------------------ login and start
  function saveHash() { Web.writeHash({ status: state.status }); }

  function showLogin(error) {
    Web.clearToken();
    $("changes").hidden = true;
    $("logout").hidden = true;
    $("who-text").textContent = "";
    $("login").hidden = false;
    $("login-error").hidden = !error;
    $("login-error").textContent = error || "";
    setPageState("login");
  }

  async function enter() {
    $("login").hidden = true;
    $("message").hidden = true;
    setPageState("loading");
    try {
      state.me = await api("/me");
    } catch (e) {
      if (e.status === 401) return showLogin(refusal(e));
      showMessage(t("network_title"), refusal(e));
      return setPageState("error");
    }
    const role = Web.label("role_", state.me.role);
    $("who-text").textContent = `${role} ${state.me.user}`;
    $("logout").hidden = false;
    if (!READERS.includes(state.me.role)) {
      showMessage(t("role_cannot_read", { role }), t("role_cannot_read_text"));
      return setPageState("error");
    }
    const scopes = (state.me.scopes || []).map((s) => s.label);
    $("scope-text").textContent = state.me.role === "auditor" ? t("scope_auditor")
      : t("scope_regions", { regions: scopes.join(t("list_sep")) || "—" }) + (state.me.role === "approver" ? "" : t("scope_read_only"));
    await load();
  }

  function start() {
    Web.takeTokenFromAddress();
    const wanted = Web.readHash().get("status");
    if (STATUSES.includes(wanted)) state.status = wanted;
    Web.onLogin(() => { $("token-input").value = ""; enter(); });
    $("logout").addEventListener("click", () => showLogin());
    $("refresh").addEventListener("click", () => { $("decision-status").hidden = true; load(); });
    if (!Web.token()) return showLogin();
    enter();
  }

  start();
})();
