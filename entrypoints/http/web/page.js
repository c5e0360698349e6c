// The grid worker's page: pick a grid, see who is not covered and why, open one person, export.
// All data comes from the ledger API with the worker's bearer token; nothing is sent elsewhere.
// The page state lives in the address hash (#grid=…&year=…&as_of=…&reason=…&person=…), so a
// filtered list or an opened person can be bookmarked, shared with a colleague who has the
// same grid, and reloaded. The shared helpers (texts, token, API, DOM, yuan, files) are common.js's `Web`.
(function () {
  "use strict";
  const { $, t, el, setPageState } = Web;
  // Yuan without thousands grouping on this page: its rows read like the CSV/XLSX exports they are compared with.
  const yuan = (fen) => Web.yuan(fen, false);
  const LABELS = JSON.parse(document.getElementById("labels").textContent);
  const PHONE = window.matchMedia("(max-width: 600px)");
  const state = {
    me: null,
    code: "", year: "", asOf: "", reason: "", person: "", q: "", page: 1,
    total: 0, pages: 1, byReason: {},
    loaded: null,  // {code, year, asOf, day}: what the list on screen is for
    gaps: [], coverage: null, opener: null, arrears: [],
  };

  // ------------------------------------------------------------------ small helpers
  // GET from the API with the tab's token in the page's language: JSON, or the response itself (`raw`) for files.
  const api = (path, params, raw) => Web.api(path, { params, as: raw ? "response" : "json" });

  // How the year shown was chosen (the server's code, said in the page's language; its own label otherwise).
  function basisOf(body) {
    return Web.has("basis_" + body.year_basis) ? t("basis_" + body.year_basis) : (body.year_basis_label || t("basis_asked"));
  }

  function thisYear() { return String(new Date().getFullYear()); }

  function areaWord(code) { return code.length === 9 ? t("area_township") : code.length === 6 ? t("area_county") : t("area_grid"); }
  const PER_PAGE = 50;  // rows per page: a phone gets a short page, never the whole grid

  function scopeLabel(code) {
    const scope = ((state.me && state.me.scopes) || []).find((s) => s.code === code);
    return scope ? scope.label : areaWord(code) + " " + code;
  }

  function scopeText() {
    const scopes = ((state.me && state.me.scopes) || []).map((s) => s.code);
    return scopes.length ? scopes.join(t("list_sep")) : t("none");
  }

  // ------------------------------------------------------------------ the address
  function readHash() {
    const p = Web.readHash();
    const reason = (p.get("reason") || "").trim();
    return {
      code: (p.get("grid") || "").trim(), year: (p.get("year") || "").trim(), asOf: (p.get("as_of") || "").trim(),
      reason: reason in LABELS.reasons ? reason : "", person: (p.get("person") || "").trim(),
      q: (p.get("q") || "").trim().slice(0, 40), page: Math.max(1, Math.min(100000, parseInt(p.get("page"), 10) || 1)),
    };
  }

  function writeHash() {
    Web.writeHash({ grid: state.code, year: state.year, as_of: state.asOf, reason: state.reason, q: state.q,
                    page: state.page > 1 ? String(state.page) : "", person: state.person });
  }

  // [title, text] of an API error, in the page's language, for the area `code` the worker asked about.
  function describeError(err, code) {
    const b = err.body;
    const year = state.year || (state.loaded && state.loaded.year) || thisYear();
    const area = { area: areaWord(code), code };
    switch (err.status) {
      case 0: return [t("network_title"), t("network_retry")];
      case 401: return [t("token_invalid_title"), err.text || t("token_again")];
      case 403:
        if (b.code === "SCOPE_FORBIDDEN" && code) {
          return [t("scope_forbidden_title", area), t("scope_forbidden_text", { scopes: scopeText() })];
        }
        return [t("forbidden_title"), err.text || t("forbidden_text")];
      case 404:
        if (b.code === "GRID_UNKNOWN" || b.code === "TOWNSHIP_UNKNOWN") return [t("area_unknown_title", area), t("area_unknown_text")];
        if (b.code === "POLICY_YEAR_UNKNOWN") return [t("policy_year_unknown_title", { year }), t("policy_year_unknown_text")];
        if (b.code === "PERSON_NOT_FOUND") return [t("person_unknown_title"), t("person_unknown_text")];
        return [t("not_found_title"), err.text];
      case 422:
        if (b.code === "GRID_FORMAT" || b.code === "REGION_FORMAT") return [t("code_format_title"), t("code_format_text")];
        if (b.code === "DATE_INVALID") return [t("date_format_title"), t("date_format_text")];
        return [t("invalid_title"), err.text];
      default:
        return [t("server_error_title"), t("server_error_text", { request_id: err.requestId || t("none") })];
    }
  }

  // ------------------------------------------------------------------ screens
  function showMessage(title, text, kind) { Web.showMessage(title, text, kind === "info"); }

  function hideMessage() { $("message").hidden = true; }

  function showLogin(error) {
    Web.clearToken();
    for (const id of ["controls", "result", "message", "who", "person"]) $(id).hidden = true;
    $("login").hidden = false;
    $("login-error").hidden = !error;
    $("login-error").textContent = error || "";
    $("token-input").value = "";
    setPageState("login");
  }

  async function enter() {
    $("login").hidden = true;
    setPageState("loading");
    try {
      state.me = await api("/me");
    } catch (err) {
      if (err.status === 401) return showLogin(describeError(err, "").join(t("colon")));
      showMessage(...describeError(err, ""));
      return setPageState("error");
    }
    const role = Web.label("role_", state.me.role);
    $("who-text").textContent = `${role} ${state.me.user}`;
    $("import-link").hidden = state.me.role !== "clerk";  // the import page is the clerks' (POST /imports)
    // the maker-checker page: clerks propose, approvers decide (GET /changes, POST /changes/{id}/approve|reject)
    $("changes-link").hidden = !["clerk", "approver"].includes(state.me.role);
    $("who").hidden = false;
    if (!state.me.reads_grids) {
      showMessage(t("role_cannot_read", { role }), state.me.role === "approver"
        ? t("approver_hint") : t("role_cannot_read_text"));
      return setPageState("error");
    }
    fillPicker();
    $("controls").hidden = false;
    if (!state.code) {
      const first = state.me.scopes.find((s) => s.kind === "grid" || s.kind === "township" ||
        (s.kind === "region" && state.me.role !== "grid_worker"));
      state.code = first ? first.code : "";
    }
    showQuery();
    if (!state.code) {
      showMessage(t("pick_grid_title"), t("pick_grid_text"), "info");
      return setPageState("idle");
    }
    await load();
  }

  const OTHER = "other";  // the picker's "another code" choice: shows the code field

  function fillPicker() {
    const select = $("grid-select");
    // Clerks pick one of their counties (then a township or grid of it); grid workers their grids.
    const areas = state.me.scopes.filter((s) => s.kind === "grid" || s.kind === "township" ||
      (s.kind === "region" && state.me.role !== "grid_worker"));
    select.replaceChildren(...areas.map((s) => el("option", { value: s.code, text: s.label })),
      el("option", { value: OTHER, text: areas.length ? t("other_code") : t("type_code") }));
  }

  function showQuery() {
    const select = $("grid-select");
    const inScope = [...select.options].some((o) => o.value === state.code && o.value !== OTHER);
    select.value = inScope ? state.code : OTHER;
    $("grid-input").value = inScope ? "" : state.code;
    $("grid-input-field").hidden = inScope;
    $("year-input").value = state.year || "";
    $("asof-input").value = state.asOf;
  }

  // Without a year the server picks one: this year, or the latest with data (and says which, year_basis_label).
  function listQuery() {
    return { year: state.year, as_of: state.asOf, reason: state.reason, q: state.q, page: state.page, per_page: PER_PAGE };
  }

  async function load() {
    const query = { year: state.year, as_of: state.asOf };
    const code = state.code;
    if (code.length === 6) return loadRegion(code);
    $("areas").hidden = true;
    const path = "/grids/" + encodeURIComponent(code);
    hideMessage();
    setPageState("loading");
    $("result").setAttribute("aria-busy", "true");
    let coverage, list;
    try {
      coverage = await api(path + "/coverage", query);
      // The list for the coverage's year and day, so both speak of the same thing.
      list = await api(path + "/gaps", { ...listQuery(), year: coverage.year, as_of: state.asOf });
    } catch (err) {
      $("result").hidden = true;
      state.loaded = null;
      if (err.status === 401) return showLogin(describeError(err, code).join(t("colon")));
      $("controls").open = true;
      $("query-summary").textContent = "";
      showMessage(...describeError(err, code));
      return setPageState("error");
    } finally {
      $("result").removeAttribute("aria-busy");
    }
    if (code !== state.code) return;  // the worker asked for another area meanwhile
    // Subsidised people first (资助参保对象 must be 100% covered); the API already orders them so.
    takeList(list);
    state.coverage = coverage;
    state.loaded = { code, year: String(list.year), asOf: state.asOf, day: coverage.day };
    $("result").hidden = false;
    $("query-summary").textContent = t("query_summary", { place: scopeLabel(code), year: state.loaded.year });
    if (PHONE.matches) $("controls").open = false;  // the list matters on a phone; the form is one tap away
    renderSummary();
    renderList();
    setPageState("ready");
    loadArrears(code, coverage.day);
    loadFees(code, coverage.day);
    if (state.person) openPerson(state.person, null);
  }

  function takeList(list) {
    state.gaps = list.gaps.map((g, i) => [g, i])
      .sort((a, b) => (b[0].subsidised - a[0].subsidised) || (a[1] - b[1])).map((p) => p[0]);
    state.total = list.total;
    state.pages = list.pages;
    state.page = list.page;
    state.byReason = list.by_reason || {};
  }

  // Another page, reason or search of the area on screen: only the list is read again.
  async function loadList() {
    if (!state.loaded) return;
    const { code, year } = state.loaded;
    $("result").setAttribute("aria-busy", "true");
    let list;
    try {
      list = await api("/grids/" + encodeURIComponent(code) + "/gaps", { ...listQuery(), year });
    } catch (err) {
      if (err.status === 401) return showLogin(describeError(err, code).join(t("colon")));
      showMessage(...describeError(err, code));
      return;
    } finally {
      $("result").removeAttribute("aria-busy");
    }
    if (code !== state.code) return;
    hideMessage();
    takeList(list);
    renderList();
  }

  // ------------------------------------------------------------------ a county (区县): pick a township or grid
  async function loadRegion(code) {
    hideMessage();
    setPageState("loading");
    $("result").hidden = true;
    state.loaded = null;
    let body;
    try {
      body = await api("/regions/" + encodeURIComponent(code) + "/areas", { year: state.year, as_of: state.asOf });
    } catch (err) {
      $("areas").hidden = true;
      if (err.status === 401) return showLogin(describeError(err, code).join(t("colon")));
      showMessage(...describeError(err, code));
      return setPageState("error");
    }
    if (code !== state.code) return;
    const pick = (area) => {
      const button = el("button", { type: "button", class: "secondary small", "data-code": area.code },
        area.label, " ", el("span", { class: "hint", text: t("area_pick_note", { covered: area.covered, residents: area.residents, rate: area.coverage_percent || "—" }) }));
      button.addEventListener("click", () => {
        Object.assign(state, { code: area.code, reason: "", q: "", page: 1, person: "" });
        writeHash();
        showQuery();
        load();
      });
      return button;
    };
    $("areas-title").textContent = t("areas_title", { place: body.label });
    $("areas-note").textContent = t("areas_note", { year: body.year, basis: basisOf(body),
      day: body.day, n: body.townships.length }) +
      (body.places_note ? " · " + body.places_note : "");
    $("areas-list").replaceChildren(...body.townships.map((t) => el("div", { class: "township" },
      pick(t), el("div", { class: "grids" }, ...t.grids.map(pick)))));
    if (!body.townships.length) $("areas-list").replaceChildren(el("p", { class: "empty", text: t("areas_empty") }));
    $("areas").hidden = false;
    $("query-summary").textContent = body.label;
    setPageState("areas");
  }

  // ------------------------------------------------------------------ arrears (欠费名单)
  // Read after the gap list, on its day; a refusal or failure here leaves the gap list standing.
  // A row with nothing outstanding is a month paid late whose late fee is still owed (fee_only).
  async function loadArrears(code, day) {
    const section = $("arrears-section");
    section.dataset.state = "loading";
    $("arrears-count").textContent = t("reading");
    $("arrears-rows").replaceChildren();  // never the rows of the area asked before
    $("arrears").hidden = true;
    $("arrears-empty").hidden = true;
    let body;
    try {
      body = await api("/arrears", { grid: code, as_of: day });
    } catch (err) {
      if (code !== state.code) return;
      state.arrears = [];
      $("arrears-rows").replaceChildren();
      $("arrears").hidden = true;
      $("arrears-empty").hidden = false;
      $("arrears-empty").classList.add("failed");
      $("arrears-empty").textContent = t("arrears_failed", { reason: describeError(err, code).join(t("colon")) });
      section.dataset.state = "error";
      return;
    }
    if (code !== state.code) return;
    state.arrears = body.arrears;
    const feeOnly = body.arrears.filter((a) => a.fee_only).length;
    $("arrears-count").textContent = t("arrears_count", { n: body.count, outstanding: yuan(body.outstanding_fen),
      fee: yuan(body.late_fee_fen) }) + (feeOnly ? t("arrears_fee_only", { n: feeOnly, label: LABELS.arrears_status.fee_only }) : "");
    $("arrears-rows").replaceChildren(...body.arrears.map(arrearsRow));
    $("arrears").hidden = body.arrears.length === 0;
    $("arrears-empty").hidden = body.arrears.length !== 0;
    $("arrears-empty").classList.remove("failed");
    $("arrears-empty").textContent = t("arrears_empty");
    const employers = body.employers || [];
    $("arrears-employers").replaceChildren(...employers.map((e) => el("li", { "data-employer-id": e.employer_id,
      text: t("employer_line", { employer: e.employer_id, persons: e.persons, outstanding: yuan(e.outstanding_fen),
        fee: yuan(e.late_fee_fen), total: yuan(e.total_fen) }) })));
    $("arrears-employers").hidden = employers.length === 0;
    section.dataset.state = "ready";
  }

  // ------------------------------------------------------------------ late fees (滞纳金清单)
  // Every employer month of the area with a fee accrued (paid and waived ones too), the arithmetic spelt out.
  async function loadFees(code, day) {
    const section = $("fees-section");
    section.dataset.state = "loading";
    $("fees-count").textContent = t("reading");
    $("fees-rows").replaceChildren();
    $("fees").hidden = true;
    $("fees-empty").hidden = true;
    let body;
    try {
      body = await api("/fees", { grid: code, as_of: day, all: "true" });
    } catch (err) {
      if (code !== state.code) return;
      $("fees-empty").hidden = false;
      $("fees-empty").classList.add("failed");
      $("fees-empty").textContent = t("fees_failed", { reason: describeError(err, code).join(t("colon")) });
      section.dataset.state = "error";
      return;
    }
    if (code !== state.code) return;
    $("fees-count").textContent = t("fees_count", { n: body.count, accrued: yuan(body.accrued_fen), paid: yuan(body.fee_paid_fen),
      waived: yuan(body.waived_fen), owed: yuan(body.owed_fen) });
    $("fees-rows").replaceChildren(...body.fees.map((f) => el("tr", { class: "arrears-card", "data-person-id": f.person_id,
      "data-period": f.period, "data-status": f.fee_status },
      el("td", { "data-label": t("col_employer"), text: f.employer_id }),
      el("td", { "data-label": t("col_name") }, el("span", { class: "name", text: f.name || t("no_name") }), " ",
        el("span", { class: "idno", text: f.id_number || "" })),
      el("td", { "data-label": t("col_period"), text: f.period }),
      el("td", { "data-label": t("col_arithmetic"), class: "arithmetic", text: f.arithmetic }),
      el("td", { class: "num", "data-label": t("col_fee_paid"), text: yuan(f.fee_paid_fen) }),
      el("td", { class: "num late-fee", "data-label": t("col_owed"), text: yuan(f.owed_fen) }),
      el("td", { "data-label": t("col_status") }, el("span", { class: "status", text: Web.has("fee_status_" + f.fee_status) ? t("fee_status_" + f.fee_status) : f.fee_status_label }),
        f.waived ? el("span", { class: "hint", text: t("waiver_line", { reason: f.waiver_reason, approver: f.waiver_approver }) }) : null))));
    $("fees").hidden = body.fees.length === 0;
    $("fees-empty").hidden = body.fees.length !== 0;
    $("fees-empty").classList.remove("failed");
    $("fees-empty").textContent = t("fees_empty");
    section.dataset.state = "ready";
  }

  // The arrears and fee files of the area on screen (the same fetch-then-save as the gap list's export).
  async function exportArea(path, label, statusId, buttonIds) {
    if (!state.loaded) return;
    const { code } = state.loaded;
    const day = state.coverage ? state.coverage.day : state.asOf;
    const status = $(statusId);
    const buttons = buttonIds.map($);
    buttons.forEach((b) => { b.disabled = true; });
    status.textContent = t("exporting");
    try {
      const response = await api(path, { grid: code, as_of: day }, true);
      const name = await Web.saveFile(response, `${label}_${code}.${path.split(".").pop()}`);
      status.textContent = t("exported_rows", { n: response.headers.get("X-Row-Count") || "", file: name });
      status.dataset.file = name;
    } catch (err) {
      if (err.status === 401) return showLogin(describeError(err, code).join(t("colon")));
      status.textContent = t("export_failed", { reason: describeError(err, code).join(t("comma")) });
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  function arrearsRow(a) {
    const status = a.fee_only ? LABELS.arrears_status.fee_only : LABELS.arrears_status.outstanding;
    const how = a.fee_only ? t("overdue_paid", { days: a.days_overdue, paid_on: a.paid_in_full_on }) : t("overdue", { days: a.days_overdue });
    return el("tr", { class: "arrears-card" + (a.fee_only ? " fee-only" : ""), "data-person-id": a.person_id,
      "data-period": a.period, "data-fee-only": String(Boolean(a.fee_only)) },
      el("td", { "data-label": t("col_name") }, el("span", { class: "name", text: a.name || t("no_name") })),
      el("td", { "data-label": t("col_id_number") }, el("span", { class: "idno", text: a.id_number || "—" })),
      el("td", { "data-label": t("col_kind"), text: (LABELS.arrears_kinds[a.kind] || a.kind) +
        (a.employer_id ? t("employer_suffix", { employer: a.employer_id }) : "") }),
      el("td", { "data-label": t("col_period"), text: a.period }),
      el("td", { class: "num", "data-label": t("col_due"), text: yuan(a.due_fen) }),
      el("td", { class: "num", "data-label": t("col_outstanding"), text: yuan(a.outstanding_fen) }),
      el("td", { class: "num late-fee", "data-label": t("col_late_fee"), text: yuan(a.late_fee_fen) }),
      el("td", { "data-label": t("col_status") }, el("span", { class: "status" + (a.fee_only ? " fee-only" : ""), text: status }),
        " ", el("span", { class: "hint", text: how })));
  }

  function renderSummary() {
    const c = state.coverage;
    $("result-title").textContent = t("result_title", { place: c.label || scopeLabel(state.loaded.code), year: state.loaded.year, day: c.day });
    // Which year and day are shown, and why (the year was not given: the latest with data).
    $("result-basis").textContent = t("result_basis", { year: state.loaded.year, basis: basisOf(c),
      day: c.day }) + (state.year ? "" : t("result_basis_hint")) + (c.places_note ? " " + c.places_note : "");
    $("coverage-rate").textContent = c.coverage_percent || "—";
    $("coverage-bar").style.width = (c.coverage_bp || 0) / 100 + "%";
    $("coverage-note").textContent = t("covered_of", { covered: c.covered, n: c.residents });
    const none = c.subsidised === 0;
    $("subsidised-rate").textContent = none ? "—" : c.subsidised_coverage_percent;
    $("subsidised-bar").style.width = (c.subsidised_coverage_bp || 0) / 100 + "%";
    $("subsidised-note").textContent = none ? t("no_subsidised") : t("covered_of", { covered: c.subsidised_covered, n: c.subsidised });
    $("stat-subsidised").classList.toggle("alarm", !none && c.subsidised_coverage_bp < 10000);
  }

  function renderList() {
    const counts = state.byReason;
    const all = Object.values(counts).reduce((a, b) => a + b, 0);
    const chips = [chip("", t("all"), all)];
    for (const reason of Object.keys(LABELS.reasons)) {
      if (reason in counts || reason === state.reason) chips.push(chip(reason, LABELS.reasons[reason], counts[reason] || 0));
    }
    $("chips").replaceChildren(...chips);
    const shown = state.gaps;
    $("gap-count").textContent = (state.q ? t("found_n", { n: state.total }) + (state.reason ? t("found_reason_all", { n: all }) : "")
      : state.reason ? t("filtered_n", { n: state.total, all }) : t("total_n", { n: state.total })) +
      (state.pages > 1 ? t("page_of_short", { page: state.page, pages: state.pages }) : "");
    $("gap-rows").replaceChildren(...shown.map(row));
    $("gaps").hidden = shown.length === 0;
    $("empty").hidden = shown.length !== 0;
    $("empty").textContent = state.q ? t("not_found_q", { q: state.q }) :
      all === 0 ? t("all_covered") : state.total ? t("page_empty") : t("reason_empty");
    $("pager").hidden = state.pages <= 1;
    $("page-text").textContent = t("page_of", { page: state.page, pages: state.pages, n: state.total });
    $("page-prev").disabled = state.page <= 1;
    $("page-next").disabled = state.page >= state.pages;
    $("search-input").value = state.q;
    $("search-clear").hidden = !state.q;
    $("export-status").textContent = "";
  }

  function chip(reason, label, count) {
    const button = el("button", {
      type: "button", class: "chip" + (reason === "SUBSIDISED_NOT_COVERED" ? " sub" : ""),
      "data-reason": reason, "aria-pressed": String(state.reason === reason),
    }, label, " ", el("span", { class: "n", text: String(count) }));
    button.addEventListener("click", () => {
      state.reason = reason;
      state.page = 1;
      writeHash();
      loadList();
    });
    return button;
  }

  function row(g) {
    const category = g.subsidy_category ? LABELS.subsidy_categories[g.subsidy_category] || g.subsidy_category : "";
    const tr = el("tr", {
      class: "gap-card" + (g.subsidised ? " subsidised" : ""), tabindex: "0",
      "data-person-id": g.person_id, "data-reason": g.reason,
    },
      el("td", { "data-label": t("col_name") }, el("span", { class: "name", text: g.name || t("no_name") }),
        g.subsidised ? " " : null,
        g.subsidised ? el("span", { class: "badge", text: t("subsidised_badge") + (category ? " · " + category : "") }) : null),
      el("td", { "data-label": t("col_id_number") }, el("span", { class: "idno", text: g.id_number || "—" })),
      el("td", { "data-label": t("col_grid"), text: g.grid_label || g.grid_code, title: g.grid_code }),
      el("td", { "data-label": t("col_reason") }, el("span", { class: "reason " + g.reason, text: Web.LANG === "en" ? (LABELS.reasons[g.reason] || g.reason) : (g.label || g.reason) }),
        // Each open transfer's state on the list's day (待转出 / 待转入 / 已逾期 N 个工作日), from the server.
        ...(g.transfers || []).map((x) => el("span", {
          class: "transfer" + (x.overdue ? " overdue" : ""), "data-transfer-id": x.transfer_id,
          title: x.explanation || "", text: t("transfer_line", { id: x.transfer_id, label: x.label }),
        }))),
      el("td", { class: "num", "data-label": t("col_outstanding"), text: yuan(g.outstanding_fen) }),
      el("td", { class: "open" }, el("button", { type: "button", class: "secondary", text: t("open_person") })));
    tr.addEventListener("click", () => openPerson(g.person_id, tr));
    tr.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && e.target === tr) openPerson(g.person_id, tr);
    });
    return tr;
  }

  // ------------------------------------------------------------------ one person
  async function openPerson(personId, opener) {
    const line = state.gaps.find((g) => g.person_id === personId);
    state.person = personId;
    state.opener = opener;
    writeHash();
    $("person-name").textContent = line ? line.name : t("person");
    $("person-id").textContent = line ? line.id_number : "";
    $("person-contact").hidden = true;
    $("person-headline").className = "headline";
    $("person-headline").textContent = t("querying");
    $("person-lines").replaceChildren();
    $("person-advice").hidden = true;
    $("person-raw").hidden = true;
    $("person").hidden = false;
    $("person").dataset.state = "loading";
    $("person-close").focus();
    let answer;
    try {
      answer = await api("/entitlements/" + encodeURIComponent(personId),
        { year: state.loaded ? state.loaded.year : state.year, on: line ? line.day : (state.loaded && state.loaded.day) });
    } catch (err) {
      if (state.person !== personId) return;
      const [title, text] = describeError(err, line ? line.grid_code : "");
      $("person-headline").textContent = title + (text ? t("colon") + text : "");
      $("person").dataset.state = "error";
      return;
    }
    if (state.person !== personId) return;
    const ex = answer.explanation;
    $("person-name").textContent = answer.name || t("person");
    $("person-id").textContent = answer.id_number;
    showContact(answer);
    const waiting = !answer.covered && answer.resident_year && answer.resident_year.waiting_until &&
      answer.resident_year.funded && String(answer.on) <= String(answer.resident_year.waiting_until);
    $("person-headline").className = "headline" + (answer.covered ? " covered" : waiting ? " waiting" : "");
    $("person-headline").textContent = ex.headline;
    $("person-lines").replaceChildren(...ex.lines.flatMap((l) => [el("dt", { text: l.topic }), el("dd", { text: l.text })]));
    $("person-advice").textContent = ex.advice ? t("advice", { advice: ex.advice }) : "";
    $("person-advice").hidden = !ex.advice;
    $("person-reason").textContent = answer.reason || "";
    const ry = answer.resident_year;
    $("person-waiting").textContent = ry && ry.waiting_reason ? "waiting: " + ry.waiting_reason : "";
    $("person-raw").hidden = false;
    $("person").dataset.state = "ready";
  }

  // Address and phone as the household registry gave them; a phone the viewer may see in full is a tel: link
  // (one tap calls it on a phone). Masked ones (138****0001) are text only.
  function showContact(answer) {
    const parts = [];
    if (answer.phone) {
      const digits = answer.phone.replace(/[^0-9+]/g, "");
      parts.push(t("phone") + " ", answer.contact_masked ? el("span", { class: "phone", text: answer.phone })
        : el("a", { class: "phone", href: "tel:" + digits, text: answer.phone }));
    }
    if (answer.address) parts.push((parts.length ? " · " : "") + t("address") + " ", el("span", { class: "address", text: answer.address }));
    $("person-contact").replaceChildren(...parts);
    $("person-contact").hidden = parts.length === 0;
  }

  function closePerson() {
    $("person").hidden = true;
    state.person = "";
    writeHash();
    if (state.opener && document.body.contains(state.opener)) state.opener.focus();
    state.opener = null;
  }

  // ------------------------------------------------------------------ exports
  async function exportList(extension) {
    if (!state.loaded) return;
    const { code, year, asOf } = state.loaded;
    const status = $("export-status");
    const buttons = [$("export-csv"), $("export-xlsx")];
    buttons.forEach((b) => { b.disabled = true; });
    status.textContent = t("exporting");
    try {
      const response = await api(`/grids/${encodeURIComponent(code)}/gaps.${extension}`,
        { year, as_of: asOf, reason: state.reason }, true);
      const name = await Web.saveFile(response, t("gaps_file", { code, year, ext: extension }));
      status.textContent = t("exported_people", { n: response.headers.get("X-Row-Count") || "", file: name });
      status.dataset.file = name;
    } catch (err) {
      if (err.status === 401) return showLogin(describeError(err, code).join(t("colon")));
      status.textContent = t("export_failed", { reason: describeError(err, code).join(t("comma")) });
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  // ------------------------------------------------------------------ events
  function applyHash() {
    const h = readHash();
    const reload = h.code !== state.code || (h.year || "") !== (state.year || "") || h.asOf !== state.asOf;
    const relist = h.reason !== state.reason || h.q !== state.q || h.page !== state.page;
    Object.assign(state, { code: h.code || state.code, year: h.year, asOf: h.asOf, reason: h.reason, q: h.q, page: h.page });
    if (!state.me) return;
    showQuery();
    if (reload) {
      state.person = h.person;
      return load();
    }
    if (state.loaded && relist) loadList();
    if (h.person && h.person !== state.person) openPerson(h.person, null);
    else if (!h.person && state.person) closePerson();
  }

  function bind() {
    Web.onLogin(enter);
    $("logout").addEventListener("click", () => {
      state.me = null;
      state.loaded = null;
      showLogin("");
    });
    $("query-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const picked = $("grid-select").value;
      state.code = picked === OTHER ? $("grid-input").value.trim() : picked;
      state.year = $("year-input").value.trim();
      state.asOf = $("asof-input").value;
      state.reason = "";
      state.q = "";
      state.page = 1;
      state.person = "";
      writeHash();
      if (!state.code) return showMessage(t("pick_grid_title"), "", "info");
      load();
    });
    $("grid-select").addEventListener("change", () => {
      const other = $("grid-select").value === OTHER;
      $("grid-input-field").hidden = !other;
      if (other) return $("grid-input").focus();
      $("grid-input").value = "";
      $("query-form").requestSubmit();
    });
    $("search-form").addEventListener("submit", (e) => {
      e.preventDefault();
      state.q = $("search-input").value.trim().slice(0, 40);
      state.page = 1;
      writeHash();
      loadList();
    });
    $("search-clear").addEventListener("click", () => {
      state.q = "";
      state.page = 1;
      writeHash();
      loadList();
    });
    const turn = (by) => {
      state.page = Math.min(Math.max(1, state.page + by), state.pages);
      writeHash();
      loadList().then(() => $("gaps").scrollIntoView({ block: "start" }));
    };
    $("page-prev").addEventListener("click", () => turn(-1));
    $("page-next").addEventListener("click", () => turn(1));
    $("export-csv").addEventListener("click", () => exportList("csv"));
    $("export-xlsx").addEventListener("click", () => exportList("xlsx"));
    const arrearsButtons = ["arrears-csv", "arrears-xlsx"];
    $("arrears-csv").addEventListener("click", () => exportArea("/arrears.csv", t("arrears_file"), "arrears-export-status", arrearsButtons));
    $("arrears-xlsx").addEventListener("click", () => exportArea("/arrears.xlsx", t("arrears_file"), "arrears-export-status", arrearsButtons));
    const feeButtons = ["fees-csv", "fees-xlsx"];
    $("fees-csv").addEventListener("click", () => exportArea("/fees.csv", t("fees_file"), "fees-export-status", feeButtons));
    $("fees-xlsx").addEventListener("click", () => exportArea("/fees.xlsx", t("fees_file"), "fees-export-status", feeButtons));
    $("person-close").addEventListener("click", closePerson);
    $("person").addEventListener("click", (e) => { if (e.target === $("person")) closePerson(); });
    document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !$("person").hidden) closePerson(); });
    window.addEventListener("hashchange", applyHash);
  }

  function start() {
    Web.takeTokenFromAddress();
    bind();
    Object.assign(state, readHash());
    if (!Web.token()) return showLogin("");
    enter();
  }

  start();
})();
