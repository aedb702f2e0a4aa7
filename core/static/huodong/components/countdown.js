/* The countdown component's behaviour (templates/components/countdown.html renders its markup).
 * A static file, not an inline script, so the Content-Security-Policy can forbid inline
 * scripts: it runs once for every countdown section of the page (loaded with `defer`, before
 * Huodong's DOMContentLoaded refresh delivers the live state).
 */
(function () {
  function init(section) {
    var componentId = section.getAttribute("data-component-id");
    var root = section.querySelector(".hd-countdown");
    if (!root) { return; }
    var end = new Date(root.getAttribute("data-ends-at")).getTime();
    var value = root.querySelector(".hd-countdown__value");
    function pad(n) { return n < 10 ? "0" + n : "" + n; }
    function tick() {
      var left = Math.floor((end - Date.now()) / 1000);
      if (left <= 0) {
        root.querySelector(".hd-countdown__label").textContent = "";
        value.textContent = root.getAttribute("data-ended-text");
        return;
      }
      var d = Math.floor(left / 86400), h = Math.floor(left % 86400 / 3600), m = Math.floor(left % 3600 / 60), s = left % 60;
      value.textContent = (d ? d + "天 " : "") + pad(h) + ":" + pad(m) + ":" + pad(s);
      setTimeout(tick, 1000);
    }
    tick();
  }
  Array.prototype.forEach.call(document.querySelectorAll('[data-component-type="countdown"]'), init);
})();
