/* The listing component's behaviour (templates/components/listing.html renders its markup).
 * A static file, not an inline script, so the Content-Security-Policy can forbid inline
 * scripts: it runs once for every listing section of the page (loaded with `defer`, before
 * Huodong's DOMContentLoaded refresh delivers the live state).
 */
(function () {
  function init(section) {
    var componentId = section.getAttribute("data-component-id");
    var root = section.querySelector("[data-listing-root]");
    if (!root || !window.Huodong || root.getAttribute("data-ready")) { return; }
    root.setAttribute("data-ready", "1");
    var tabs = root.querySelector("[data-tabs]"), items = root.querySelector("[data-items]");
    var more = root.querySelector("[data-more]"), status = root.querySelector("[data-status]");
    var current = null, nextPage = null;

    function yuan(fen) {
      var y = fen / 100;
      return y >= 10000 ? (y / 10000).toFixed(y % 10000 ? 1 : 0) + "万" : (fen % 100 ? y.toFixed(2) : String(y));
    }
    function el(tag, cls, text) {
      var node = document.createElement(tag);
      if (cls) { node.className = cls; }
      if (text !== undefined) { node.textContent = text; }
      return node;
    }
    // A listing without an image (or whose image fails) gets a neat placeholder of
    // the same size in every layout, never a broken image.
    function placeholder() {
      var box = el("div", "hd-listing__cover hd-listing__cover--empty");
      box.setAttribute("aria-hidden", "true");
      box.innerHTML = '<svg viewBox="0 0 48 48" width="36" height="36"><path d="M8 22 24 9l16 13v17H29V29h-10v10H8z" fill="currentColor"/></svg>';
      return box;
    }
    function cover(listing) {
      if (!listing.cover_image_url) { return placeholder(); }
      var img = el("img", "hd-listing__cover");
      img.loading = "lazy"; img.alt = listing.title; img.src = listing.cover_image_url;
      img.addEventListener("error", function () { if (img.parentNode) { img.parentNode.replaceChild(placeholder(), img); } });
      return img;
    }
    function card(listing) {
      var li = el("li", "hd-listing__item");
      li.setAttribute("data-listing", listing.external_id);
      var box = listing.detail_url ? el("a") : li;
      if (listing.detail_url) { box.href = listing.detail_url; li.appendChild(box); }
      box.appendChild(cover(listing));
      var body = el("div", "hd-listing__body");
      body.appendChild(el("h3", "hd-listing__name", listing.title));
      var meta = [listing.district, listing.layout, listing.area_m2 ? listing.area_m2 + "㎡" : ""].filter(Boolean).join(" · ");
      if (meta) { body.appendChild(el("p", "hd-listing__meta", meta)); }
      var tagLine = el("p", "hd-listing__meta");
      (listing.tags || []).forEach(function (t) { tagLine.appendChild(el("span", "hd-listing__tag", t)); });
      if (listing.tags && listing.tags.length) { body.appendChild(tagLine); }
      body.appendChild(el("div", "hd-listing__price", "¥" + yuan(listing.price_fen)));
      box.appendChild(body);
      return li;
    }
    function load(city, page) {
      status.textContent = "房源加载中…"; status.hidden = false; more.hidden = true;
      var url = Huodong.path(root.getAttribute("data-listings-url")) + "?city=" + encodeURIComponent(city) + "&page=" + page;
      return Huodong.api("GET", url).then(function (res) {
        if (city !== current) { return; }
        if (res.status !== 200) { status.textContent = "房源暂时无法加载"; return; }
        res.body.results.forEach(function (l) { items.appendChild(card(l)); });
        nextPage = res.body.next ? page + 1 : null;
        more.hidden = !nextPage;
        status.hidden = res.body.count > 0;
        status.textContent = res.body.count ? "" : "该城市暂无房源";
      });
    }
    function select(city) {
      current = city; items.innerHTML = "";
      Array.prototype.forEach.call(tabs.children, function (tab) {
        tab.setAttribute("aria-selected", tab.getAttribute("data-city") === city ? "true" : "false");
      });
      return load(city, 1);
    }
    more.addEventListener("click", function () { if (nextPage) { load(current, nextPage); } });
    Huodong.api("GET", Huodong.path(root.getAttribute("data-cities-url"))).then(function (res) {
      if (res.status !== 200 || !res.body.cities.length) { status.textContent = "房源即将上线"; return; }
      res.body.cities.forEach(function (c) {
        var tab = el("button", "hd-listing__tab", c.city + " (" + c.count + ")");
        tab.type = "button"; tab.setAttribute("role", "tab"); tab.setAttribute("data-city", c.city);
        tab.addEventListener("click", function () { select(c.city); });
        tabs.appendChild(tab);
      });
      select(res.body.default_city || res.body.cities[0].city);
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll('[data-component-type="listing"]'), init);
})();
