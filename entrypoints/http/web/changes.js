"use strict";
// The maker-checker page (双人复核): the changes of the viewer's regions from GET /changes, filtered by
// status, and for an approver the approve / reject buttons (POST /changes/{id}/approve|reject). Every
// refusal is the API's own (its code and Chinese message); the page never decides who may approve.
(() => {
  const TOKEN_KEY = "ledger.web.token";  // the grid page's key: one token per tab for all pages
  const $ = (id) => document.getElementById(id);
  const LABELS = JSON.parse($("labels").textContent);
  const STATUSES = ["PENDING", "APPROVED", "REJECTED", "EXPIRED", "ALL"];
  const READERS = ["clerk", "approver", "auditor"];
  const state = { token: null, me: null, rows: [], status: "PENDING", busy: false };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (v !== false && v !== null && v !== undefined) node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function setPageState(name) { document.body.dataset.state = name; }

  function showMessage(title, text) {
    $("message").hidden = false;
    $("message-title").textContent = title;
    $("message-text").textContent = text || "";
  }

  // The page is Chinese: ask the API for Chinese messages whatever the browser's own language is.
  async function call(method, path, body) {
    const headers = { Authorization: "Bearer " + state.token, "Accept-Language": "zh-CN" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { method, headers, cache: "no-store",
                                     body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw { status: 0, code: "NETWORK", message: "无法连接服务器，请检查网络后重试。" };
    }
    let data = {};
    try { data = await response.json(); } catch (e) { /* not JSON */ }
    if (!response.ok) throw { status: response.status, code: data.code || "HTTP_" + response.status, message: data.message || "" };
    return data;
  }

  // A refusal in a clerk's words: the API's Chinese message with its code, and what to do next where it helps.
  const ADVICE = {
    APPROVAL_BY_MAKER: "请由另一名有审核权限的人员审核。",
    CHANGE_EXPIRED: "请提出人重新提出该变更。",
    CHANGE_ALREADY_DECIDED: "该变更已由他人审核，列表已刷新。",
    SCOPE_FORBIDDEN: "你的令牌不含该参保地。",
    ROLE_FORBIDDEN: "只有医保审核人员可以批准或驳回。",
  };
  function refusal(e) {
    if (e.status === 401) return "访问令牌无效或已过期，请重新输入。";
    const advice = ADVICE[e.code] ? " " + ADVICE[e.code] : "";
    return `${e.message || "操作失败"}（${e.code}）${advice}`;
  }

  // ------------------------------------------------------------------ formatting
  function yuan(fen) {
    const n = Number(fen);
    if (!Number.isFinite(n)) return "—";
    const abs = Math.abs(Math.trunc(n));
    const whole = String(Math.floor(abs / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return `${n < 0 ? "-" : ""}${whole}.${String(abs % 100).padStart(2, "0")} 元`;
  }

  // Beijing time (UTC+8, no daylight saving) of an ISO instant: 2026-12-06 21:41.
  function beijing(iso) {
    const t = Date.parse(iso || "");
    if (Number.isNaN(t)) return iso || "—";
    return new Date(t + 8 * 3600 * 1000).toISOString().slice(0, 16).replace("T", " ");
  }

  function timeLeft(iso) {
    const hours = (Date.parse(iso) - Date.now()) / 3600000;
    if (!(hours > 0)) return "";
    return hours < 1 ? "（剩余不足 1 小时）" : `（剩余 ${Math.floor(hours)} 小时）`;
  }

  // The amount a change moves: the correction or debit, or the refund an enrollment end implies.
  function amountOf(row) {
    const p = row.payload || {}, r = row.result || {};
    if (p.amount_fen !== undefined) return yuan(p.amount_fen);
    const refund = r.refund_owed_fen !== undefined ? r.refund_owed_fen : p.refund_owed_fen;
    if (refund !== undefined) return "应退 " + yuan(refund);
    return "—";
  }

  function personsOf(row) {
    const shown = (row.persons || []).map((p) => `${p.name_masked} ${p.id_number_masked}`);
    if (!shown.length) return "—";
    if (row.kind === "MERGE_PERSONS" && shown.length === 2) return `保留 ${shown[0]}；并入 ${shown[1]}`;
    const more = (row.person_count || 0) > shown.length ? ` 等 ${row.person_count} 人` : "";
    return shown.join("、") + more;
  }

  // Codes the summary carries (DUPLICATE_RESOLVED, MEDICAL_EXPENSE...) in Chinese, from the API's own labels.
  function chineseSummary(text) {
    return String(text || "").replace(/\b[A-Z][A-Z_]{2,}\b/g, (code) => LABELS.values[code] || code);
  }

  function regionLabel(code) {
    const scope = ((state.me && state.me.scopes) || []).find((s) => s.code === code);
    return scope ? scope.label : code;
  }

  function mine(row) {
    return String(row.proposed_by || "").trim().toLowerCase() === String(state.me.user || "").trim().toLowerCase();
  }

  // ------------------------------------------------------------------ the list
  function renderChips() {
    const counts = { ALL: state.rows.length };
    for (const row of state.rows) counts[row.status] = (counts[row.status] || 0) + 1;
    $("status-chips").replaceChildren(...STATUSES.map((s) => {
      const chip = el("button", { type: "button", class: "chip", "data-status": s, "aria-pressed": String(s === state.status) },
        (s === "ALL" ? "全部" : LABELS.statuses[s]) + " ", el("span", { class: "n", text: String(counts[s] || 0) }));
      chip.addEventListener("click", () => { state.status = s; saveHash(); render(); });
      return chip;
    }));
  }

  function line(label, value, cls) {
    return [el("dt", { text: label }), el("dd", { text: value, class: cls || false })];
  }

  function card(row) {
    const p = row.payload || {};
    const lines = [
      ...line("参保人", personsOf(row), "idno-line"),
      ...line("金额", amountOf(row), "amount"),
      ...line("内容", chineseSummary(row.summary), "summary"),
    ];
    if ((row.kind === "MERGE_PERSONS" || row.kind === "WAIVE_LATE_FEE") && p.reason) lines.push(...line("理由", p.reason, "reason-text"));
    lines.push(...line("参保地", regionLabel(row.region_code)));
    lines.push(...line("提出人", row.proposed_by, "maker"));
    lines.push(...line("提出时间", beijing(row.proposed_at) + "（北京时间）"));
    lines.push(...line("有效期至", beijing(row.expires_at) + (row.status === "PENDING" ? timeLeft(row.expires_at) : ""), "expires"));
    if (row.decided_by) {
      const word = row.status === "REJECTED" ? "驳回" : "批准";
      lines.push(...line("审核", `${row.decided_by} 于 ${beijing(row.decided_at)} ${word}`, "decided"));
      // a rejection's reason is the change's note; an approval's optional note is kept with what it did
      const note = row.status === "REJECTED" ? row.note : (row.result || {}).note;
      if (note) lines.push(...line(row.status === "REJECTED" ? "驳回理由" : "审核意见", note, "note"));
    }
    const warnings = (p.warnings || []).length
      ? el("p", { class: "warn-line", text: "请核对：" + p.warnings.join("、") }) : null;
    const node = el("article", { class: "change-card " + row.status, "data-change-id": row.change_id, "data-status": row.status },
      el("header", { class: "change-head" },
        el("span", { class: "kind", text: row.kind_label }),
        el("span", { class: "change-status " + row.status, text: row.status_label }),
        el("span", { class: "change-id", text: "编号 " + row.change_id })),
      warnings,
      el("dl", { class: "change-lines" }, ...lines),
      actions(row));
    return node;
  }

  // Approve / reject, for an approver, on a pending change somebody else proposed.
  function actions(row) {
    if (row.status !== "PENDING") return null;
    if (mine(row)) return el("p", { class: "hint own", text: "这是你提出的变更，须由另一名有审核权限的人员审核。" });
    if (state.me.role !== "approver") return el("p", { class: "hint", text: "等待医保审核人员审核。" });
    const id = "note-" + row.change_id.replace(/[^A-Za-z0-9_-]/g, "_");
    const input = el("input", { id, class: "decision-note", maxlength: "500", autocomplete: "off",
                                placeholder: "批准可不填；驳回须填写理由" });
    const approve = el("button", { type: "button", class: "primary approve", text: "批准" });
    const reject = el("button", { type: "button", class: "secondary danger reject", text: "驳回" });
    const status = el("p", { class: "decision-error error", role: "alert", hidden: true });
    approve.addEventListener("click", () => decide(row, "approve", input, status, [approve, reject]));
    reject.addEventListener("click", () => decide(row, "reject", input, status, [approve, reject]));
    return el("div", { class: "decision" }, el("label", { for: id, text: "审核意见 / 驳回理由" }), input,
      el("div", { class: "actions" }, approve, reject), status);
  }

  function render() {
    renderChips();
    let rows = state.status === "ALL" ? state.rows.slice() : state.rows.filter((r) => r.status === state.status);
    // Pending: the oldest first (it expires first); decided: the newest first.
    if (state.status !== "PENDING") rows = rows.reverse();
    $("changes-count").textContent = `共 ${rows.length} 项`;
    const empty = { PENDING: "没有待审核的变更。", APPROVED: "没有已批准的变更。", REJECTED: "没有已驳回的变更。",
                    EXPIRED: "没有已过期的变更。", ALL: "还没有任何变更。" }[state.status];
    $("changes-empty").hidden = rows.length > 0;
    $("changes-empty").textContent = empty;
    $("change-list").replaceChildren(...rows.map(card));
  }

  async function load() {
    setPageState("loading");
    try {
      const answer = await call("GET", "/changes?status=ALL");
      state.rows = answer.changes || [];
      $("changes").hidden = false;
      render();
      setPageState("ready");
    } catch (e) {
      if (e.status === 401) return showLogin(refusal(e));
      showMessage("无法读取变更列表", refusal(e));
      setPageState("error");
    }
  }

  async function decide(row, verb, input, status, buttons) {
    if (state.busy) return;
    const text = input.value.trim();
    status.hidden = true;
    if (verb === "reject" && !text) {
      status.textContent = "驳回须填写理由。";
      status.hidden = false;
      input.focus();
      return;
    }
    state.busy = true;
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const body = verb === "reject" ? { reason: text } : (text ? { note: text } : {});
      const answer = await call("POST", `/changes/${encodeURIComponent(row.change_id)}/${verb}`, body);
      notice(`${answer.kind_label}（编号 ${answer.change_id}）${answer.status_label}。`);
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
  function saveHash() { history.replaceState(null, "", location.pathname + "#status=" + state.status); }

  function showLogin(error) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
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
      state.me = await call("GET", "/me");
    } catch (e) {
      if (e.status === 401) return showLogin(refusal(e));
      showMessage("无法连接服务器", refusal(e));
      return setPageState("error");
    }
    $("who-text").textContent = `${state.me.role_label} ${state.me.user}`;
    $("logout").hidden = false;
    if (!READERS.includes(state.me.role)) {
      showMessage(`你的角色「${state.me.role_label}」不能查看待审核变更`, "请使用医保经办、医保审核或审计人员的访问令牌。");
      return setPageState("error");
    }
    const scopes = (state.me.scopes || []).map((s) => s.label);
    $("scope-text").textContent = state.me.role === "auditor" ? "审计：全部参保地（只读）"
      : `参保地：${scopes.join("、") || "—"}` + (state.me.role === "approver" ? "" : "（只读，审核须由医保审核人员进行）");
    await load();
  }

  function start() {
    const url = new URL(location.href);
    if (url.searchParams.has("token")) {
      const token = (url.searchParams.get("token") || "").trim();
      url.searchParams.delete("token");
      history.replaceState(null, "", url.pathname + url.search + url.hash);
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
    }
    const wanted = new URLSearchParams(location.hash.slice(1)).get("status");
    if (STATUSES.includes(wanted)) state.status = wanted;
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const token = $("token-input").value.trim();
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      state.token = token;
      $("token-input").value = "";
      enter();
    });
    $("logout").addEventListener("click", () => showLogin());
    $("refresh").addEventListener("click", () => { $("decision-status").hidden = true; load(); });
    state.token = sessionStorage.getItem(TOKEN_KEY);
    if (!state.token) return showLogin();
    enter();
  }

  start();
})();
