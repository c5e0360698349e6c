// The clerk's import page: upload a registration sheet to POST /imports, show every problem of every
// row, download the error workbook (POST /imports?errors=xlsx with the same file: rows imported the
// first time are "already imported", so nothing is imported twice) and the templates.
// The shared helpers (texts, token, API, DOM) are common.js's `Web`.
(() => {
  "use strict";
  const { $, t, el, api, setPageState, showMessage } = Web;
  const state = { file: null };

  function failure(e) {
    if (e.status === 401) return [t("token_invalid_title"), t("token_again_clerk")];
    if (e.status === 403) return [t("forbidden_title"), e.text || t("forbidden_text")];
    return [t("failed_title", { code: e.code }), e.text];
  }

  function formData() {
    const form = new FormData();
    form.append("file", state.file, state.file.name);
    return form;
  }

  // What rows were imported with a notice about (a township without its village, a defaulted county...): one
  // notice per distinct sentence with the rows it concerns; a row not imported lists its problems below instead.
  function rowWarnings(lines) {
    const seen = new Map();
    for (const line of lines) {
      if (line.status === "error") continue;
      for (const w of line.warnings || []) {
        const key = [w.code, w.column, w.message].join("\u0000");
        if (!seen.has(key)) seen.set(key, { code: w.code, column: w.column, message: w.message, lines: [] });
        seen.get(key).lines.push(String(line.line));
      }
    }
    return Array.from(seen.values());
  }

  function render(report) {
    $("report").hidden = false;
    $("report-counts").textContent = t("counts", { rows: report.rows, imported: report.imported,
      enrolled: report.already_enrolled, before: report.already_imported, errors: report.errors });
    $("report-notices").replaceChildren(...(report.notices || []).map((n) =>
      el("li", { class: "notice", text: n.message || t("notice", { column: n.column, code: n.code }) })),
      ...rowWarnings(report.lines || []).map((w) => el("li", { class: "notice row-warning",
        text: t("row_warning", { line: w.lines.join(t("line_sep")), column: w.column || "—", message: w.message })
          + (w.code ? t("code_suffix", { code: w.code }) : "") })));
    const bad = (report.lines || []).filter((l) => l.status === "error");
    $("errors-head").hidden = bad.length === 0;
    $("problems").hidden = bad.length === 0;
    $("error-count").textContent = t("rows_n", { n: bad.length });
    const rows = [];
    for (const line of bad) {
      const problems = line.problems && line.problems.length ? line.problems : [{ column: "", message: line.message }];
      problems.forEach((p, i) => rows.push(el("tr", { class: "problem" + (i === 0 ? " first" : "") },
        el("td", { "data-label": t("col_line"), text: i === 0 ? String(line.line) : "" }),
        el("td", { "data-label": t("col_id_number"), class: "idno", text: i === 0 ? (line.id_number || "—") : "" }),
        el("td", { "data-label": t("col_column"), text: p.column || "—" }),
        el("td", { "data-label": t("col_problem"), text: p.message + (p.code ? t("code_suffix", { code: p.code }) : "") }))));
    }
    $("problem-rows").replaceChildren(...rows);
  }

  async function upload() {
    state.file = $("file-input").files[0] || null;
    if (!state.file) return;
    $("message").hidden = true;
    $("upload-status").textContent = t("uploading", { file: state.file.name });
    setPageState("loading");
    try {
      const report = await api("/imports?filename=" + encodeURIComponent(state.file.name), { body: formData() });
      render(report);
      $("upload-status").textContent = t("uploaded", { file: state.file.name });
      setPageState("report");
    } catch (e) {
      $("upload-status").textContent = "";
      const [title, text] = failure(e);
      showMessage(title, text);
      if (e.status === 401) showLogin();
      setPageState("error");
    }
  }

  async function download(path, fallback, statusId, body) {
    $(statusId).textContent = t("generating");
    try {
      const name = await Web.saveFile(await api(path, { body, as: "response" }), fallback);
      $(statusId).textContent = t("downloaded", { file: name });
    } catch (e) {
      $(statusId).textContent = failure(e).join(t("colon"));
    }
  }

  function showLogin() {
    Web.clearToken();
    $("upload").hidden = true;
    $("login").hidden = false;
    setPageState("login");
  }

  function enter() {
    $("login").hidden = true;
    $("upload").hidden = false;
    setPageState("ready");
  }

  function start() {
    Web.takeTokenFromAddress();
    Web.onLogin(enter);
    $("upload-form").addEventListener("submit", (e) => { e.preventDefault(); upload(); });
    $("template-xlsx").addEventListener("click", () => download("/imports/template.xlsx", t("template_file_xlsx"), "upload-status"));
    $("template-csv").addEventListener("click", () => download("/imports/template.csv", t("template_file_csv"), "upload-status"));
    $("error-workbook").addEventListener("click", () => download(
      "/imports?errors=xlsx&filename=" + encodeURIComponent(state.file.name), t("error_file"), "workbook-status", formData()));
    if (!Web.token()) return showLogin();
    enter();
  }

  start();
})();
