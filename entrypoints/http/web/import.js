"use strict";
// The clerk's import page: upload a registration sheet to POST /imports, show every problem of every
// row, download the error workbook (POST /imports?errors=xlsx with the same file: rows imported the
// first time are "already imported", so nothing is imported twice) and the templates.
(() => {
  const TOKEN_KEY = "ledger.web.token";  // the grid page's key: one token per tab for both pages
  const $ = (id) => document.getElementById(id);
  const state = { token: null, file: null };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (v !== false && v !== null && v !== undefined) node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  function setPageState(name) { document.body.dataset.state = name; }

  function showMessage(title, text) {
    $("message").hidden = false;
    $("message-title").textContent = title;
    $("message-text").textContent = text || "";
  }

  // The Chinese part of an API message (the API puts English in parentheses after it, or Chinese after English).
  function chinese(message) {
    const text = message || "";
    const m = /\(([^()]*[\u4e00-\u9fff][^()]*)\)\s*$/.exec(text);
    return m ? m[1] : text;
  }

  async function call(method, path, body) {
    let response;
    try {
      response = await fetch(path, { method, body, headers: { Authorization: "Bearer " + state.token },
                                     cache: "no-store" });
    } catch (e) {
      throw { status: 0, code: "NETWORK", message: "无法连接服务器，请检查网络后重试。" };
    }
    if (!response.ok) {
      let data = {};
      try { data = await response.json(); } catch (e) { /* not JSON */ }
      throw { status: response.status, code: data.code || "HTTP_" + response.status, message: data.message || "" };
    }
    return response;
  }

  function fileName(response, fallback) {
    const header = response.headers.get("Content-Disposition") || "";
    const m = /filename\*=UTF-8''([^;]+)/.exec(header);
    return m ? decodeURIComponent(m[1]) : fallback;
  }

  async function save(response, fallback) {
    const name = fileName(response, fallback);
    const href = URL.createObjectURL(await response.blob());
    const link = el("a", { href, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60000);
    return name;
  }

  function failure(e) {
    if (e.status === 401) return ["访问令牌无效或已过期", "请重新输入经办人员的访问令牌。"];
    if (e.status === 403) return ["没有导入权限", chinese(e.message) || "只有经办人员可以导入参保登记表。"];
    return [`导入失败（${e.code}）`, chinese(e.message)];
  }

  function formData() {
    const form = new FormData();
    form.append("file", state.file, state.file.name);
    return form;
  }

  function render(report) {
    $("report").hidden = false;
    $("report-counts").textContent = `共 ${report.rows} 行：新导入 ${report.imported} 行，已参保 ${report.already_enrolled} 行，` +
      `此前已导入 ${report.already_imported} 行，有问题未导入 ${report.errors} 行。`;
    $("report-notices").replaceChildren(...(report.notices || []).map((n) =>
      el("li", { class: "notice", text: n.message || `${n.column}：${n.code}` })));
    const bad = (report.lines || []).filter((l) => l.status === "error");
    $("errors-head").hidden = bad.length === 0;
    $("problems").hidden = bad.length === 0;
    $("error-count").textContent = `${bad.length} 行`;
    const rows = [];
    for (const line of bad) {
      const problems = line.problems && line.problems.length ? line.problems : [{ column: "", message: line.message }];
      problems.forEach((p, i) => rows.push(el("tr", { class: "problem" + (i === 0 ? " first" : "") },
        el("td", { "data-label": "行号", text: i === 0 ? String(line.line) : "" }),
        el("td", { "data-label": "证件号码", class: "idno", text: i === 0 ? (line.id_number || "—") : "" }),
        el("td", { "data-label": "列", text: p.column || "—" }),
        el("td", { "data-label": "问题", text: p.message + (p.code ? `（${p.code}）` : "") }))));
    }
    $("problem-rows").replaceChildren(...rows);
  }

  async function upload() {
    state.file = $("file-input").files[0] || null;
    if (!state.file) return;
    $("message").hidden = true;
    $("upload-status").textContent = `正在导入 ${state.file.name} …`;
    setPageState("loading");
    try {
      const report = await (await call("POST", "/imports?filename=" + encodeURIComponent(state.file.name), formData())).json();
      render(report);
      $("upload-status").textContent = `已处理 ${state.file.name}。`;
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
    $(statusId).textContent = "正在生成文件 …";
    try {
      const name = await save(await call(body ? "POST" : "GET", path, body), fallback);
      $(statusId).textContent = `已下载 ${name}`;
    } catch (e) {
      $(statusId).textContent = failure(e).join("：");
    }
  }

  function showLogin() {
    sessionStorage.removeItem(TOKEN_KEY);
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
    const url = new URL(location.href);
    if (url.searchParams.has("token")) {
      const token = (url.searchParams.get("token") || "").trim();
      url.searchParams.delete("token");
      history.replaceState(null, "", url.pathname + url.search + url.hash);
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
    }
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const token = $("token-input").value.trim();
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      state.token = token;
      enter();
    });
    $("upload-form").addEventListener("submit", (e) => { e.preventDefault(); upload(); });
    $("template-xlsx").addEventListener("click", () => download("/imports/template.xlsx", "参保登记导入模板.xlsx", "upload-status"));
    $("template-csv").addEventListener("click", () => download("/imports/template.csv", "参保登记导入模板.csv", "upload-status"));
    $("error-workbook").addEventListener("click", () => download(
      "/imports?errors=xlsx&filename=" + encodeURIComponent(state.file.name), "错误行.xlsx", "workbook-status", formData()));
    state.token = sessionStorage.getItem(TOKEN_KEY);
    if (!state.token) return showLogin();
    enter();
  }

  start();
})();
