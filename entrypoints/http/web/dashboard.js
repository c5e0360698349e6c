// The county dashboard (参保工作看板): coverage against the target per township and grid, collection progress,
// arrears, reconciliation. Everything comes from this server's API with the viewer's bearer token (the same
// token and the same tab storage as the grid worker's page, so a drill-down link opens the grid page signed in).
// The shared helpers (texts, token, API, DOM, yuan) are common.js's `Web`.
(function () {
  "use strict";
  const { $, t, el, yuan, points, api, label } = Web;
  const state = { me: null, code: "", year: "", asOf: "", data: null };

  // The place's label without the county in front ("汉滨区 镇 610902100" -> "镇 610902100").
  function shortLabel(text) {
    const parts = String(text || "").split(" ");
    return parts.length > 1 && /[区县市]$/.test(parts[0]) ? parts.slice(1).join(" ") : String(text || "");
  }

  // ------------------------------------------------------------------ the address
  function readHash() {
    const p = Web.readHash();
    return { code: (p.get("code") || "").trim(), year: (p.get("year") || "").trim(), asOf: (p.get("as_of") || "").trim() };
  }

  function writeHash() { Web.writeHash({ code: state.code, year: state.year, as_of: state.asOf }); }

  // ------------------------------------------------------------------ errors
  function describeError(err) {
    switch (err.status) {
      case 0: return [t("network_title"), t("network_retry")];
      case 401: return [t("token_invalid_title"), err.text || t("token_again")];
      case 403: return [t("forbidden_title"), err.text || t("forbidden_text")];
      case 404: return [t("not_found_title"), err.text || t("not_found_text")];
      case 422: return [t("invalid_title"), err.text || t("invalid_text")];
      default: return [t("server_error_title"), t("server_error_text", { code: err.body.code || err.status })];
    }
  }

  // ------------------------------------------------------------------ login
  function showLogin(error) {
    document.body.dataset.state = "login";
    $("login").hidden = false;
    $("controls").hidden = true;
    $("board").hidden = true;
    $("who").hidden = true;
    $("login-error").hidden = !error;
    $("login-error").textContent = error || "";
  }

  function logout() {
    Web.clearToken();
    $("token-input").value = "";
    showLogin("");
  }

  // The places the viewer may open: counties (clerks), townships (grid workers holding one), or typed (auditors).
  function places() {
    return ((state.me && state.me.scopes) || []).filter((s) => s.code.length === 6 || s.code.length === 9);
  }

  async function start() {
    try {
      state.me = await api("/me");
    } catch (err) {
      if (err.status === 401) return showLogin(t("token_invalid_again"));
      const [title, text] = describeError(err);
      return Web.showMessage(title, text);
    }
    $("login").hidden = true;
    $("who").hidden = false;
    $("who-text").textContent = t("who", { user: state.me.user, role: label("role_", state.me.role) });
    $("controls").hidden = false;
    const select = $("place-select");
    select.replaceChildren();
    for (const s of places()) select.append(el("option", { value: s.code, text: s.label }));
    const typed = state.me.role === "auditor" || !select.options.length;
    $("place-input-field").hidden = !typed;
    select.parentElement.hidden = typed;
    const h = readHash();
    state.code = h.code || (select.options.length ? select.options[0].value : "");
    state.year = h.year; state.asOf = h.asOf;
    if (state.code && !typed) select.value = state.code;
    $("place-input").value = state.code;
    $("year-input").value = state.year;
    $("asof-input").value = state.asOf;
    if (!state.code) {
      $("controls").open = true;
      return Web.showMessage(t("pick_place_title"), t("pick_place_text"), true);
    }
    await load();
  }

  // ------------------------------------------------------------------ the board
  async function load() {
    writeHash();
    $("message").hidden = true;
    document.body.dataset.state = "loading";
    const params = { year: state.year, as_of: state.asOf };
    // The charts are drawn for the width they are shown at, so their text is its real size on a phone.
    $("board").hidden = false;
    const width = String(Math.max(300, Math.min(1600, Math.round($("coverage-chart").clientWidth || 720))));
    const base = "/regions/" + encodeURIComponent(state.code);
    let data, coverage, collection;
    try {
      [data, coverage, collection] = await Promise.all([
        api(base + "/dashboard", { params }),
        api(base + "/dashboard.svg", { params: { ...params, chart: "coverage", width }, as: "text" }),
        api(base + "/dashboard.svg", { params: { ...params, chart: "collection", width }, as: "text" }),
      ]);
    } catch (err) {
      $("board").hidden = true;
      document.body.dataset.state = "error";
      if (err.status === 401) return showLogin(t("token_invalid_again"));
      const [title, text] = describeError(err);
      return Web.showMessage(title, text);
    }
    state.data = data;
    render(data, coverage, collection);
    document.body.dataset.state = "ready";
  }

  function putSvg(box, text) {
    const doc = new DOMParser().parseFromString(text, "image/svg+xml");
    const svg = doc.documentElement;
    box.replaceChildren();
    if (svg && svg.nodeName.toLowerCase() === "svg") box.append(document.importNode(svg, true));
  }

  function stat(name, value, note, cls) {
    return el("div", { class: "stat " + (cls || "") }, el("div", { class: "stat-label", text: name }),
      el("div", { class: "stat-value", text: value }), el("div", { class: "stat-note", text: note }));
  }

  function gapCell(r, targetBp) {
    if (r.coverage_bp === null || targetBp === null) return el("td", { text: "—" });
    if (r.meets_target) return el("td", { class: "met", text: t("met") });
    return el("td", { class: "short gap" }, t("gap_points", { points: points(r.gap_bp) }),
      el("span", { class: "unit", text: t("gap_points_unit") }), t("gap_people", { n: r.people_short }));
  }

  function rankRows(tbody, rows, targetBp) {
    tbody.replaceChildren();
    for (const r of rows) {
      const sub = r.subsidised ? [r.subsidised_coverage_percent, el("span", { class: "unit",
        text: t("of_people", { covered: r.subsidised_covered, n: r.subsidised }) })] : ["—"];
      tbody.append(el("tr", { "data-code": r.code },
        el("td", { class: "num", text: String(r.rank) }),
        el("td", { class: "place" }, el("a", { class: "drill", href: Web.withLang(r.link), text: shortLabel(r.label) })),
        el("td", { class: "num", text: r.coverage_percent || "—" }),
        gapCell(r, targetBp),
        el("td", { class: "sub " + (r.subsidised_meets_target === false ? "short" : "") }, ...sub)));
    }
  }

  function render(d, coverageSvg, collectionSvg) {
    const tg = d.target, tot = d.total;
    $("board-title").textContent = t("board_title", { place: d.label, year: d.year });
    $("board-basis").textContent = t("board_basis", { day: d.day, basis: label("basis_", d.year_basis),
                                                      policy: tg.policy_version });
    $("query-summary").textContent = t("board_title", { place: d.label, year: d.year });
    const head = $("headline");
    head.replaceChildren(
      stat(t("stat_coverage"), tot.coverage_percent || "—",
        tg.coverage_percent ? (tot.meets_target ? t("target_met", { target: tg.coverage_percent })
          : t("target_short", { target: tg.coverage_percent, n: tot.people_short })) : t("no_target"),
        tot.meets_target === false ? "alarm" : "good"),
      stat(t("stat_subsidised"), tot.subsidised_coverage_percent || "—",
        (tg.subsidised_coverage_percent ? t("target_prefix", { target: tg.subsidised_coverage_percent }) : "") +
          t("uncovered_people", { n: tot.subsidised - tot.subsidised_covered }),
        tot.subsidised_meets_target === false ? "alarm" : "good"),
      stat(t("stat_collection"), d.collection.collected_percent || "—",
        t("collection_note_short", { collected: yuan(d.collection.collected_fen), assessed: yuan(d.collection.assessed_fen) })),
      stat(t("stat_arrears"), Web.money(d.arrears.outstanding_fen),
        t("arrears_note_short", { n: d.arrears.persons, fee: yuan(d.arrears.late_fee_fen) }), d.arrears.rows ? "alarm" : "good"));
    $("target-note").textContent = tg.coverage_percent
      ? t("target_note", { target: tg.coverage_percent, subsidised: tg.subsidised_coverage_percent || "—",
                           policy: tg.policy_version })
      : t("no_target");
    putSvg($("coverage-chart"), coverageSvg);
    const county = d.kind === "county";
    $("rank-place-head").textContent = county ? t("col_township") : t("col_grid");
    rankRows($("rank-table").querySelector("tbody"), county ? d.townships : d.grids, tg.coverage_bp);
    $("grids-box").hidden = !county;
    $("grids-summary").textContent = t("grids_summary", { n: d.grids.length });
    rankRows($("grid-table").querySelector("tbody"), county ? d.grids : [], tg.coverage_bp);

    const c = d.collection;
    $("collection-note").textContent = t("collection_note", { year: c.year, start: c.concentrated_start,
      end: c.concentrated_end, last_year: c.last_year, last_start: c.last_concentrated_start || "—" });
    putSvg($("collection-chart"), collectionSvg);
    const weeks = $("week-table").querySelector("tbody");
    weeks.replaceChildren();
    for (const w of c.weeks) {
      const pct = (bp) => (bp === null || bp === undefined ? "—" : points(bp) + "%");
      weeks.append(el("tr", {}, el("td", { text: t("week_n", { n: w.week }) }),
        el("td", { class: "opt", text: w.from ? t("date_range", { from: w.from, to: w.to }) : "—" }),
        el("td", { class: "num opt", text: yuan(w.assessed_fen) }), el("td", { class: "num", text: yuan(w.collected_fen) }),
        el("td", { class: "num", text: pct(w.collected_bp) }), el("td", { class: "num", text: pct(w.last_collected_bp) })));
    }

    const a = d.arrears;
    const list = el("ul", { class: "plain-list" });
    for (const [k, v] of Object.entries(a.by_kind)) {
      list.append(el("li", { text: t("arrears_kind_line", { kind: label("kind_", k), rows: v.rows,
        outstanding: yuan(v.outstanding_fen) }) + (v.late_fee_fen ? t("arrears_kind_fee", { fee: yuan(v.late_fee_fen) }) : "") }));
    }
    $("arrears-body").replaceChildren(
      el("p", { text: t("arrears_line", { as_of: a.as_of, rows: a.rows, persons: a.persons, outstanding: a.outstanding_yuan,
                                          fee: a.late_fee_yuan }) }), list);

    $("recon-panel").hidden = !county;
    const recon = $("recon-table").querySelector("tbody");
    recon.replaceChildren();
    for (const r of d.reconciliation) {
      recon.append(el("tr", {}, el("td", { text: r.business_date }),
        el("td", {}, el("span", { class: "state " + r.state, text: Web.has("recon_" + r.state) ? t("recon_" + r.state) : r.state_label })),
        el("td", { class: "num opt", text: String(r.statements) }), el("td", { class: "num", text: yuan(r.collected_fen) }),
        el("td", { class: "num", text: yuan(r.recorded_fen) }), el("td", { class: "num", text: yuan(r.difference_fen) }),
        el("td", { class: "num opt", text: String(r.open_discrepancies) })));
    }
    $("recon-empty").hidden = d.reconciliation.length > 0;
    $("board").hidden = false;
  }

  async function exportPng() {
    $("png-status").textContent = t("png_working");
    try {
      const blob = await api("/regions/" + encodeURIComponent(state.code) + "/dashboard.png",
        { params: { year: state.year || (state.data && state.data.year), as_of: state.asOf }, as: "blob" });
      Web.saveBlob(blob, t("png_file", { code: state.code }));
      $("png-status").textContent = t("png_done");
    } catch (err) {
      $("png-status").textContent = describeError(err).join(t("colon"));
    }
  }

  // ------------------------------------------------------------------ wiring
  Web.onLogin(start);
  $("logout").addEventListener("click", logout);
  $("query-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.code = ($("place-input-field").hidden ? $("place-select").value : $("place-input").value).trim();
    state.year = $("year-input").value.trim();
    state.asOf = $("asof-input").value.trim();
    load();
  });
  $("png-export").addEventListener("click", exportPng);

  Web.takeTokenFromAddress();
  if (!Web.token()) showLogin(""); else start();
})();
