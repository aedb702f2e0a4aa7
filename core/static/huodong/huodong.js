/* Huodong H5 runtime: the small API every component template uses.
 *
 *   Huodong.token()                      the end user's JWT (from "#token=..." in the URL,
 *                                        remembered in localStorage), or null
 *   Huodong.api(method, path, body, {idempotencyKey})
 *                                        -> Promise<{status, body}>; sends the token and,
 *                                        for POSTs, an Idempotency-Key (a fresh one unless given)
 *   Huodong.onState(type, fn)            fn(element, state, component) is called for every
 *                                        component of that type once the live state arrives
 *   Huodong.refresh()                    re-fetches /api/v1/activities/{slug} and re-applies state
 *   Huodong.path(publicPath)             the path to read: on a signed preview page, the
 *                                        preview's twin of an activity/listing API path
 *
 * A component's root element carries data-component-id and data-component-type.
 */
(function () {
  "use strict";
  var TOKEN_KEY = "huodong_token";
  var handlers = {};

  function token() {
    var match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash || "");
    if (match) {
      try { window.localStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1])); } catch (e) {}
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    try { return window.localStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
  }

  function uuid() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    return "k-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  }

  function api(method, path, body, options) {
    var headers = { "Accept": "application/json" };
    var t = token();
    if (t) { headers["Authorization"] = "Bearer " + t; }
    if (body !== undefined && body !== null) { headers["Content-Type"] = "application/json"; }
    if (method !== "GET") { headers["Idempotency-Key"] = (options && options.idempotencyKey) || uuid(); }
    return fetch(path, {
      method: method,
      headers: headers,
      body: body === undefined || body === null ? undefined : JSON.stringify(body),
      credentials: "omit",
    }).then(function (response) {
      return response.text().then(function (text) {
        var parsed = null;
        try { parsed = text ? JSON.parse(text) : null; } catch (e) { parsed = { error: { code: "bad_response", message: text } }; }
        return { status: response.status, body: parsed };
      });
    });
  }

  function onState(type, fn) {
    (handlers[type] = handlers[type] || []).push(fn);
  }

  // On a signed preview page (/a/preview/<token>/) the draft's state and listings
  // come from the preview's own endpoints, behind the same token.
  function previewBase() {
    var root = document.querySelector("[data-activity-slug][data-preview]");
    if (!root) { return null; }
    var match = /^\/a\/preview\/[^/]+\//.exec(window.location.pathname);
    return match ? match[0] : null;
  }

  // A public API path, or its preview twin on a preview page.
  function path(publicPath) {
    var base = previewBase();
    if (!base) { return publicPath; }
    var component = /^\/api\/v1\/components\/(\d+)\/(cities|listings)(.*)$/.exec(publicPath);
    if (component) { return base + "components/" + component[1] + "/" + component[2] + component[3]; }
    if (/^\/api\/v1\/activities\//.test(publicPath)) { return base + "api/"; }
    return publicPath;
  }

  function refresh() {
    var root = document.querySelector("[data-activity-slug]");
    if (!root) { return Promise.resolve(); }
    var slug = root.getAttribute("data-activity-slug");
    return api("GET", path("/api/v1/activities/" + encodeURIComponent(slug))).then(function (res) {
      if (res.status !== 200 || !res.body) { return; }
      (res.body.components || []).forEach(function (component) {
        var el = document.querySelector('[data-component-id="' + component.id + '"]');
        (handlers[component.type] || []).forEach(function (fn) { fn(el, component.state || {}, component); });
      });
    });
  }

  window.Huodong = { token: token, api: api, onState: onState, refresh: refresh, uuid: uuid, path: path };
  token();
  document.addEventListener("DOMContentLoaded", refresh);
})();
