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

  function refresh() {
    var root = document.querySelector("[data-activity-slug]");
    if (!root) { return Promise.resolve(); }
    var slug = root.getAttribute("data-activity-slug");
    return api("GET", "/api/v1/activities/" + encodeURIComponent(slug)).then(function (res) {
      if (res.status !== 200 || !res.body) { return; }
      (res.body.components || []).forEach(function (component) {
        var el = document.querySelector('[data-component-id="' + component.id + '"]');
        (handlers[component.type] || []).forEach(function (fn) { fn(el, component.state || {}, component); });
      });
    });
  }

  window.Huodong = { token: token, api: api, onState: onState, refresh: refresh, uuid: uuid };
  token();
  document.addEventListener("DOMContentLoaded", refresh);
})();
