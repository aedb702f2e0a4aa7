/* The paid_sale component's behaviour (templates/components/paid_sale.html renders its markup).
 * A static file, not an inline script, so the Content-Security-Policy can forbid inline
 * scripts: it runs once for every paid_sale section of the page (loaded with `defer`, before
 * Huodong's DOMContentLoaded refresh delivers the live state).
 */
(function () {
  function init(section) {
    var componentId = section.getAttribute("data-component-id");
    var root = section;
    if (!root || !window.Huodong || root.getAttribute("data-paid-sale-ready")) { return; }
    root.setAttribute("data-paid-sale-ready", "1");
    var button = root.querySelector("[data-buy]");
    if (!button) { return; }
    var label = button.textContent;
    var message = root.querySelector("[data-message]");
    var price = root.querySelector("[data-price]");
    if (price) { price.textContent = (Number(price.textContent) / 100).toFixed(2); }
    var pending = null;
    var returning = window.location.hash === "#paid-sale-" + componentId;
    var polls = 0;
    // One Idempotency-Key per attempt: a retry after a network error or a 5xx other
    // than payment_unavailable (the outcome is unknown: the order may have been
    // placed) reuses it, so the same order is answered again instead of a second one.
    var attemptKey = null;

    function yuan(fen) { return (fen / 100).toFixed(2); }
    function cashier(url) {
      var back = window.location.pathname + window.location.search + "#paid-sale-" + componentId;
      window.location.href = url + (url.indexOf("?") < 0 ? "?" : "&") + "return_url=" + encodeURIComponent(back);
    }

    window.Huodong.onState("paid_sale", function (el, state) {
      if (el !== root || !state) { return; }
      var remaining = root.querySelector("[data-remaining]");
      if (remaining && state.remaining !== undefined) { remaining.textContent = state.remaining; }
      if (state.price_fen !== undefined && price) { price.textContent = yuan(state.price_fen); }
      var user = state.user;
      var list = root.querySelector("[data-entitlements]");
      list.innerHTML = "";
      ((user && user.entitlements) || []).forEach(function (e) {
        var li = document.createElement("li");
        li.setAttribute("data-entitlement", e.kind);
        li.textContent = "已购：" + e.product + (e.valid_until ? "，有效期至 " + e.valid_until.slice(0, 10) : "（" + e.quantity + " 次）");
        list.appendChild(li);
      });
      pending = user && user.pending_order;
      if (returning && pending && polls < 20) {
        // back from the cashier: the payment result is on its way, look again shortly
        polls += 1;
        message.textContent = "支付结果确认中…";
        setTimeout(window.Huodong.refresh, 1000);
      } else if (returning) {
        returning = false;
        message.textContent = (user && user.entitlements && user.entitlements.length) ? "支付成功，权益已到账" : "";
      }
      if (pending) {
        button.disabled = false; button.textContent = "继续支付 ¥" + yuan(pending.amount_fen);
      } else if (state.sale_status === "sold_out") {
        button.disabled = true; button.textContent = "已售罄";
      } else if (state.sale_status === "not_started") {
        button.disabled = true; button.textContent = "未开售";
      } else if (state.sale_status === "ended") {
        button.disabled = true; button.textContent = "已结束";
      } else if (user && !user.can_buy) {
        button.disabled = true; button.textContent = "已达限购数量";
      } else {
        button.disabled = false; button.textContent = label;
      }
    });

    button.addEventListener("click", function () {
      if (pending) { cashier(pending.cashier_url); return; }
      if (!window.Huodong.token()) { message.textContent = "请先登录"; return; }
      button.disabled = true;
      message.textContent = "下单中…";
      attemptKey = attemptKey || window.Huodong.uuid();
      window.Huodong.api("POST", "/api/v1/components/" + componentId + "/orders", {}, { idempotencyKey: attemptKey }).then(function (res) {
        var code = res.body && res.body.error && res.body.error.code;
        if (res.status < 500 || code === "payment_unavailable") { attemptKey = null; }
        if (res.status === 201 && res.body && res.body.cashier_url) {
          message.textContent = "正在前往收银台…";
          cashier(res.body.cashier_url);
          return;
        }
        message.textContent = (res.body && res.body.error && res.body.error.message) || "下单失败，请重试";
        button.disabled = false;
        window.Huodong.refresh();
      }, function () {
        message.textContent = "网络异常，请重试";
        button.disabled = false;
      });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll('[data-component-type="paid_sale"]'), init);
})();
