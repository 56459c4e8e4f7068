/* app.js - the citizen bill page: bind an account, then show its bills.
 *
 * Talks only to the portal's own API (same origin, docs/api.md). The
 * portal user id is generated once and kept in localStorage; the binding
 * token is kept in sessionStorage only (gone when the tab closes). Money is
 * handled in integer fen and formatted with integer arithmetic. Nothing
 * from the server is ever inserted as HTML (textContent only).
 */
(function () {
  "use strict";

  var USER_KEY = "gg.portal_user_id";
  var BINDING_KEY = "gg.binding";
  var memoryStore = {};

  function $(id) { return document.getElementById(id); }

  /* storage - localStorage/sessionStorage, or memory when the browser refuses. */
  function storageGet(kind, key) {
    try { return window[kind].getItem(key); } catch (e) { return memoryStore[kind + key] || null; }
  }
  function storageSet(kind, key, value) {
    try { window[kind].setItem(key, value); } catch (e) { memoryStore[kind + key] = value; }
  }
  function storageRemove(kind, key) {
    try { window[kind].removeItem(key); } catch (e) { delete memoryStore[kind + key]; }
  }

  /* portalUserId - this browser's portal user id, made once. */
  function portalUserId() {
    var id = storageGet("localStorage", USER_KEY);
    if (id && /^[0-9A-Za-z._:@-]{1,64}$/.test(id)) return id;
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    id = "web-" + Array.prototype.map.call(bytes, function (b) {
      return (b < 16 ? "0" : "") + b.toString(16);
    }).join("");
    storageSet("localStorage", USER_KEY, id);
    return id;
  }

  /* formatFen - integer fen to "1,234.56" yuan without floating point. */
  function formatFen(fen) {
    if (typeof fen === "string" && /^-?[0-9]+$/.test(fen)) fen = Number(fen);
    if (typeof fen !== "number" || !Number.isSafeInteger(fen)) return "—";
    var sign = fen < 0 ? "-" : "";
    var abs = Math.abs(fen);
    var cents = abs % 100;
    var yuan = (abs - cents) / 100;            /* exact: both are integers */
    var digits = String(yuan);
    var grouped = "";
    while (digits.length > 3) {
      grouped = "," + digits.slice(-3) + grouped;
      digits = digits.slice(0, -3);
    }
    return sign + digits + grouped + "." + (cents < 10 ? "0" : "") + cents;
  }

  /* maskAccount - all but the last 4 characters hidden. */
  function maskAccount(acct) {
    acct = String(acct || "");
    if (acct.length <= 4) return acct;
    return new Array(acct.length - 4 + 1).join("*") + acct.slice(-4);
  }

  function pad2(n) { return (n < 10 ? "0" : "") + n; }

  /* monthString - "YYYY-MM" of a year and a 0-based month that may overflow. */
  function monthString(year, month0) {
    var d = new Date(year, month0, 1);
    return d.getFullYear() + "-" + pad2(d.getMonth() + 1);
  }

  function showError(text) {
    var box = $("error");
    box.textContent = text;
    box.hidden = false;
    box.scrollIntoView({ block: "nearest" });
  }

  function clearError() {
    $("error").hidden = true;
    $("error").textContent = "";
  }

  /* describeError - the API's error.message, its code and transaction id. */
  function describeError(res) {
    var err = res.data && res.data.error;
    if (err && typeof err.message === "string") {
      var text = err.message + (err.code ? "  [" + err.code + "]" : "");
      if (err.transaction_id) text += "\n交易号 Transaction: " + err.transaction_id;
      return text;
    }
    if (res.status === 0) return "无法连接门户服务。Cannot reach the portal.";
    return "请求失败 Request failed (HTTP " + res.status + ").";
  }

  /* api - call the portal; resolves {status, data} and never rejects. */
  function api(method, path, body, token) {
    var headers = { "Accept": "application/json" };
    var init = { method: method, headers: headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json; charset=utf-8";
      init.body = JSON.stringify(body);
    }
    if (token) headers["X-Binding-Token"] = token;
    return fetch(path, init).then(function (r) {
      var type = r.headers.get("Content-Type") || "";
      if (type.indexOf("application/json") !== 0) return { status: r.status, data: null };
      return r.json().then(function (data) {
        return { status: r.status, data: data };
      }, function () { return { status: r.status, data: null }; });
    }, function () { return { status: 0, data: null }; });
  }

  function markInvalid(input, bad) {
    input.setAttribute("aria-invalid", bad ? "true" : "false");
  }

  /* binding - {account_no, token, holder} of this tab, or null. */
  function binding() {
    var raw = storageGet("sessionStorage", BINDING_KEY);
    if (!raw) return null;
    try {
      var b = JSON.parse(raw);
      if (b && typeof b.token === "string" && typeof b.account_no === "string") return b;
    } catch (e) { /* fall through */ }
    storageRemove("sessionStorage", BINDING_KEY);
    return null;
  }

  function showBound() {
    var b = binding();
    $("bind-section").hidden = !!b;
    $("bound-section").hidden = !b;
    $("bills-section").hidden = !b;
    if (!b) return;
    $("bound-account").textContent = maskAccount(b.account_no);
    $("bound-holder").textContent = b.holder ? "（" + b.holder + "）" : "";
    if (!$("from").value || !$("to").value) {
      var now = new Date();
      $("to").value = monthString(now.getFullYear(), now.getMonth());
      $("from").value = monthString(now.getFullYear(), now.getMonth() - 11);
    }
  }

  function forget() {
    storageRemove("sessionStorage", BINDING_KEY);
    $("bills-table").hidden = true;
    $("bills-empty").hidden = true;
    $("bills-body").textContent = "";
    showBound();
  }

  function onBind(ev) {
    ev.preventDefault();
    clearError();
    var acct = $("account_no"), name = $("holder_name"), last4 = $("phone_last4");
    var problems = [];
    var acctOk = /^[0-9A-Za-z]{1,32}$/.test(acct.value.trim());
    var nameOk = name.value.trim().length > 0;
    var last4Ok = /^[0-9]{4}$/.test(last4.value.trim());
    markInvalid(acct, !acctOk);
    markInvalid(name, !nameOk);
    markInvalid(last4, !last4Ok);
    if (!acctOk) problems.push("户号应为 1 至 32 位字母或数字。Account number: 1 to 32 letters or digits.");
    if (!nameOk) problems.push("请填写户主姓名。Please enter the holder's name.");
    if (!last4Ok) problems.push("手机号后四位应为 4 位数字。Phone: exactly 4 digits.");
    if (problems.length) { showError(problems.join("\n")); return; }

    var button = $("bind-button");
    button.disabled = true;
    api("POST", "/api/v1/bindings", {
      portal_user_id: portalUserId(),
      account_no: acct.value.trim(),
      holder_name: name.value.trim(),
      phone_last4: last4.value.trim()
    }).then(function (res) {
      button.disabled = false;
      if (res.status !== 200 && res.status !== 201) { showError(describeError(res)); return; }
      var d = res.data || {};
      if (typeof d.binding_token !== "string") { showError(describeError(res)); return; }
      var account = d.account || {};
      storageSet("sessionStorage", BINDING_KEY, JSON.stringify({
        account_no: typeof account.account_no === "string" ? account.account_no : acct.value.trim(),
        token: d.binding_token,
        holder: typeof account.holder_name === "string" ? account.holder_name : ""
      }));
      last4.value = "";
      showBound();
    });
  }

  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function intOr(v, alt) {
    return typeof v === "number" && Number.isSafeInteger(v) ? v : alt;
  }

  var STATUS = {
    paid: "已缴 Paid",
    unpaid: "未缴 Unpaid",
    overdue: "逾期 Overdue"
  };

  function renderBills(list) {
    var body = $("bills-body");
    body.textContent = "";
    var totalKwh = 0, totalFen = 0, fenOk = true;
    list.forEach(function (b) {
      var tr = document.createElement("tr");
      var kwh = intOr(b.kwh, null);
      var peak = intOr(b.kwh_peak !== undefined ? b.kwh_peak : b.peak_kwh, null);
      var valley = intOr(b.kwh_valley !== undefined ? b.kwh_valley : b.valley_kwh, null);
      var fen = intOr(b.amount_fen, null);
      cell(tr, String(b.period || ""));
      cell(tr, kwh === null ? "—" : String(kwh), "num");
      cell(tr, peak === null ? "—" : String(peak), "num");
      cell(tr, valley === null ? "—" : String(valley), "num");
      cell(tr, fen === null ? "—" : formatFen(fen), "num");
      cell(tr, String(b.due_date || ""));
      var st = cell(tr, "");
      var tag = document.createElement("span");
      var key = String(b.status || "");
      tag.textContent = STATUS[key] || key;
      tag.className = "status" + (STATUS[key] ? " status-" + key : "");
      st.appendChild(tag);
      body.appendChild(tr);
      if (kwh !== null) totalKwh += kwh;
      if (fen !== null) totalFen += fen; else fenOk = false;
    });
    $("total-kwh").textContent = String(totalKwh);
    $("total-amount").textContent = fenOk ? formatFen(totalFen) : "—";
    $("bills-table").hidden = list.length === 0;
    $("bills-empty").hidden = list.length !== 0;
  }

  function onBills(ev) {
    ev.preventDefault();
    clearError();
    var b = binding();
    if (!b) { showBound(); return; }
    var from = $("from").value.trim(), to = $("to").value.trim();
    var re = /^[0-9]{4}-(0[1-9]|1[0-2])$/;
    markInvalid($("from"), from !== "" && !re.test(from));
    markInvalid($("to"), to !== "" && !re.test(to));
    if ((from && !re.test(from)) || (to && !re.test(to))) {
      showError("月份格式应为 YYYY-MM。Months must be YYYY-MM.");
      return;
    }
    if (from && to && from > to) {
      showError("起始月份不能晚于截止月份。From must not be after To.");
      return;
    }
    var q = [];
    if (from) q.push("from=" + encodeURIComponent(from));
    if (to) q.push("to=" + encodeURIComponent(to));
    var path = "/api/v1/accounts/" + encodeURIComponent(b.account_no) + "/bills" +
      (q.length ? "?" + q.join("&") : "");
    var button = $("bills-button");
    button.disabled = true;
    api("GET", path, undefined, b.token).then(function (res) {
      button.disabled = false;
      if (res.status === 401 || res.status === 403) {
        var msg = describeError(res);
        forget();
        showError(msg + "\n请重新绑定。Please bind the account again.");
        return;
      }
      if (res.status !== 200 || !res.data || !Array.isArray(res.data.bills)) {
        showError(describeError(res));
        return;
      }
      renderBills(res.data.bills);
    });
  }

  function init() {
    $("portal_user_id").textContent = portalUserId();
    $("bind-form").addEventListener("submit", onBind);
    $("bills-form").addEventListener("submit", onBills);
    $("unbind-button").addEventListener("click", function () { clearError(); forget(); });
    showBound();
  }

  /* Exposed for a quick check in the browser console; not used by the page. */
  window.ggFormatFen = formatFen;

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
