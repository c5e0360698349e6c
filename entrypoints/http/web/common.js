// What the four web pages (grid page, dashboard, import, changes) share, defined once: the page's texts in its
// language (t), the token of this tab (sessionStorage, taken from ?token= and removed from the address), the API
// call (bearer token, the page's language as Accept-Language, ApiError), the DOM builder, yuan and percentage
// text, the address hash, file downloads and the language switch. Inlined before each page's own script.
const Web = (() => {
  "use strict";
  const TOKEN_KEY = "ledger.web.token";  // one token per tab for all pages
  const $ = (id) => document.getElementById(id);
  const block = document.getElementById("ledger-texts");
  const TEXTS = block ? JSON.parse(block.textContent) : { lang: "zh", texts: {} };
  const LANG = TEXTS.lang === "en" ? "en" : "zh";
  const HAN = /[\u3400-\u9fff\uf900-\ufaff]/;

  // ------------------------------------------------------------------ texts
  // A text of the page in its language, {placeholders} filled (the catalogue's format; the key when missing).
  function t(key, values) {
    const template = Object.prototype.hasOwnProperty.call(TEXTS.texts, key) ? TEXTS.texts[key] : key;
    return template.replace(/\{(\w+)\}/g, (whole, name) =>
      values && values[name] !== undefined && values[name] !== null ? String(values[name]) : whole);
  }
  function has(key) { return Object.prototype.hasOwnProperty.call(TEXTS.texts, key); }
  // A code's text (kind_RESIDENT...) or the code itself.
  function label(prefix, code) { return has(prefix + code) ? t(prefix + code) : String(code || ""); }

  // The part of an API message in the page's language. The API answers in the language the page asks for; an
  // older message may carry the other language in parentheses at its end (中文（English）, English (中文)).
  function apiText(message) {
    const text = String(message || "").trim();
    if (!text) return "";
    const m = /[(（]([^()（）]*)[)）]\s*$/.exec(text);
    const main = m ? text.slice(0, m.index).trim() : text, tail = m ? m[1].trim() : "";
    if (LANG === "zh") {
      if (tail && HAN.test(tail) && !HAN.test(main)) return tail;
      return HAN.test(text) ? text : "";
    }
    if (!HAN.test(text)) return text;
    if (tail && !HAN.test(tail) && HAN.test(main)) return tail;
    return !HAN.test(main) ? main : "";
  }

  // ------------------------------------------------------------------ the DOM
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function setPageState(name) { document.body.dataset.state = name; }

  function showMessage(title, text, info) {
    $("message").classList.toggle("info", !!info);
    $("message-title").textContent = title;
    $("message-text").textContent = text || "";
    $("message").hidden = false;
  }

  // ------------------------------------------------------------------ money and rates
  // Yuan with two decimals and thousands grouped (fen in, text out): 12,345.60 (12345.60 with grouped false);
  // "—" when unknown.
  function yuan(fen, grouped = true) {
    if (fen === null || fen === undefined || fen === "") return "—";
    const n = Number(fen);
    if (!Number.isFinite(n)) return "—";
    const abs = Math.abs(Math.trunc(n));
    const digits = String(Math.floor(abs / 100));
    const whole = grouped ? digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",") : digits;
    return (n < 0 ? "-" : "") + whole + "." + String(abs % 100).padStart(2, "0");
  }
  // "12.50 元" / "12.50 yuan".
  function money(fen) { return t("money", { amount: yuan(fen) }); }
  // Basis points as a percentage number: 8674 -> "86.74".
  function points(bp) { return Math.floor(bp / 100) + "." + String(bp % 100).padStart(2, "0"); }

  // ------------------------------------------------------------------ the token of this tab
  // A token opened as ?token=… is kept for this tab and removed from the address at once, so it stays out of
  // the history, bookmarks and screenshots.
  function takeTokenFromAddress() {
    const url = new URL(location.href);
    if (!url.searchParams.has("token")) return;
    const token = (url.searchParams.get("token") || "").trim();
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
  }
  function token() { return sessionStorage.getItem(TOKEN_KEY); }
  function setToken(value) { sessionStorage.setItem(TOKEN_KEY, value); }
  function clearToken() { sessionStorage.removeItem(TOKEN_KEY); }

  // The login form: the token typed, kept for this tab, then `enter()`.
  function onLogin(enter) {
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const value = $("token-input").value.trim();
      if (!value) return;
      setToken(value);
      enter(value);
    });
  }

  // ------------------------------------------------------------------ the API
  class ApiError extends Error {
    constructor(status, body, requestId) {
      super((body && body.message) || "HTTP " + status);
      this.status = status;
      this.body = body || {};
      this.code = this.body.code || (status ? "HTTP_" + status : "NETWORK");
      this.text = apiText(this.body.message);  // the API's own message, in the page's language ("" when none)
      this.requestId = requestId || "";
    }
  }

  // One call to this server with the tab's token, in the page's language. `options`: params (query; empty ones
  // left out), json (a body sent as JSON), body (FormData...), as: "json" (default), "text", "blob" or "response".
  async function api(path, options) {
    const o = options || {};
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(o.params || {})) {
      if (v !== "" && v !== null && v !== undefined) url.searchParams.set(k, v);
    }
    const headers = { Authorization: "Bearer " + token(), "Accept-Language": LANG === "en" ? "en" : "zh-CN" };
    let body = o.body;
    if (o.json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(o.json); }
    let response;
    try {
      response = await fetch(url, { method: o.method || (body === undefined ? "GET" : "POST"), headers, body,
                                    cache: "no-store" });
    } catch (e) {
      throw new ApiError(0, { code: "NETWORK", message: t("network_text") });
    }
    if (!response.ok) {
      let data = {};
      try { data = await response.json(); } catch (e) { /* not JSON: keep the status */ }
      throw new ApiError(response.status, data, response.headers.get("X-Request-ID"));
    }
    const as = o.as || "json";
    if (as === "response") return response;
    if (as === "text") return response.text();
    if (as === "blob") return response.blob();
    try { return await response.json(); } catch (e) { return {}; }
  }

  // ------------------------------------------------------------------ files
  function fileName(response, fallback) {
    const m = /filename\*=UTF-8''([^;]+)/i.exec(response.headers.get("Content-Disposition") || "");
    return m ? decodeURIComponent(m[1]) : fallback;
  }
  // A plain link cannot send the Authorization header: fetch the file, then save the blob under the server's
  // file name (or the fallback). Returns the name saved.
  async function saveFile(response, fallback) {
    const blob = await response.blob();
    return saveBlob(blob, fileName(response, fallback));
  }
  function saveBlob(blob, name) {
    const href = URL.createObjectURL(blob);
    const link = el("a", { href, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60000);
    return name;
  }

  // ------------------------------------------------------------------ the address
  function readHash() { return new URLSearchParams(location.hash.slice(1)); }
  // The hash from {key: value} (empty values left out); the path and query (?lang=…) stay.
  function writeHash(values) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(values)) if (v !== "" && v !== null && v !== undefined) p.set(k, v);
    const hash = p.toString();
    history.replaceState(null, "", location.pathname + location.search + (hash ? "#" + hash : ""));
  }

  // A link to another page of this site in the page's language (?lang=en kept in English).
  function withLang(href) {
    if (LANG !== "en" || !href) return href;
    const url = new URL(href, location.origin);
    if (url.origin !== location.origin) return href;
    url.searchParams.set("lang", "en");
    return url.pathname + url.search + url.hash;
  }

  // The language switch (中文 / English): the same page in the other language, with its hash; the token stays in
  // this tab's storage, so the page opens signed in.
  function bindLanguage() {
    for (const a of document.querySelectorAll('a[href^="/web"]:not(.lang-switch)')) a.setAttribute("href", withLang(a.getAttribute("href")));
    const link = document.getElementById("lang-switch");
    if (!link) return;
    link.addEventListener("click", (e) => {
      e.preventDefault();
      const url = new URL(location.href);
      url.searchParams.set("lang", link.getAttribute("hreflang") === "en" ? "en" : "zh");
      url.searchParams.delete("token");
      location.assign(url.pathname + url.search + location.hash);
    });
  }
  bindLanguage();

  return { TOKEN_KEY, LANG, $, t, has, label, apiText, el, setPageState, showMessage, yuan, money, points,
           takeTokenFromAddress, token, setToken, clearToken, onLogin, ApiError, api, saveFile, saveBlob, readHash,
           writeHash, withLang };
})();
