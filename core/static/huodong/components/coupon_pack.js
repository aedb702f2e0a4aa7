/* The coupon_pack component's behaviour (templates/components/coupon_pack.html renders its markup).
 * A static file, not an inline script, so the Content-Security-Policy can forbid inline
 * scripts: it runs once for every coupon_pack section of the page (loaded with `defer`, before
 * Huodong's DOMContentLoaded refresh delivers the live state).
 */
(function () {
  function init(section) {
    var componentId = section.getAttribute("data-component-id");
    var root = section;
    if (!root || !window.Huodong || root.getAttribute("data-coupon-pack-ready")) { return; }
    root.setAttribute("data-coupon-pack-ready", "1");
    var button = root.querySelector("[data-claim]");
    if (!button) { return; }
    var label = button.textContent;
    var message = root.querySelector("[data-message]");
    var LABELS = { claimed: "已领取", sold_out: "已抢光", not_started: "未开始", ended: "已结束", disabled: "已下架", unavailable: "暂不可领" };
    // One Idempotency-Key per attempt: a retry after a network error or a 5xx (the
    // outcome is unknown: a gateway may have lost the answer of a claim that went
    // through) reuses it, so that claim is answered again instead of issued twice.
    var attemptKey = null;
    var ERRORS = { sold_out: "来晚了，券包已抢光", limit_reached: "您已达到领取上限", pack_disabled: "券包已下架",
      not_started: "领取尚未开始", ended: "领取已结束", activity_not_online: "活动未在进行中", not_authenticated: "请先登录后领取" };

    function apply(state) {
      var remaining = root.querySelector("[data-remaining]");
      if (remaining && state.remaining !== undefined) { remaining.textContent = state.remaining; }
      root.setAttribute("data-state", state.state || "");
      if (state.state === "can_claim") {
        button.disabled = false;
        button.textContent = state.claimed_count ? label + "（已领 " + state.claimed_count + " 次）" : label;
      } else {
        button.disabled = true;
        button.textContent = LABELS[state.state] || label;
      }
    }

    window.Huodong.onState("coupon_pack", function (el, state) {
      if (el === root && state) { apply(state); }
    });

    function retryLater() {
      message.textContent = "网络异常，请重试";
      button.disabled = false;
    }

    button.addEventListener("click", function () {
      if (!window.Huodong.token()) { message.textContent = "请先登录后领取"; return; }
      button.disabled = true;
      message.textContent = "领取中…";
      attemptKey = attemptKey || window.Huodong.uuid();
      window.Huodong.api("POST", "/api/v1/components/" + componentId + "/claim", null, { idempotencyKey: attemptKey }).then(function (res) {
        if (res.status >= 500) { retryLater(); return; }
        attemptKey = null;
        if (res.status === 201 && res.body) {
          message.textContent = "领取成功，券已放入卡包";
          var list = root.querySelector("[data-issued]");
          (res.body.coupons || []).forEach(function (c) {
            var li = document.createElement("li");
            li.setAttribute("data-issued-code", c.code);
            li.textContent = c.name + "，有效期至 " + String(c.valid_until).slice(0, 10);
            list.appendChild(li);
          });
        } else {
          var error = (res.body && res.body.error) || {};
          message.textContent = ERRORS[error.code] || error.message || "领取失败，请重试";
        }
        window.Huodong.refresh();
      }, retryLater);
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll('[data-component-type="coupon_pack"]'), init);
})();
