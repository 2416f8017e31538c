/* Inference Model Manager console: browser upload straight to the object store.
 *
 * The API (the same routes the CLI uses, with the console session and its CSRF token) plans the
 * upload and signs one URL per part; the bytes go from the browser to the store, never through the
 * API. Each part's MD5 is computed here, so the server's completion check compares what the store
 * holds with what this browser read from the disk. An interrupted upload resumes: its id is kept in
 * localStorage and the API lists the parts already stored.
 */
(function () {
  "use strict";

  // --- MD5 (RFC 1321) of an ArrayBuffer, as 32 hex digits -------------------------------------------
  var S = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
    5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10,
    15, 21, 6, 10, 15, 21];
  var K = [];
  for (var i = 0; i < 64; i++) { K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 4294967296) | 0; }

  function md5(buffer) {
    var bytes = new Uint8Array(buffer);
    var length = bytes.length;
    var padded = new Uint8Array(((length + 8) >>> 6 << 6) + 64);
    padded.set(bytes);
    padded[length] = 0x80;
    var view = new DataView(padded.buffer);
    view.setUint32(padded.length - 8, (length * 8) >>> 0, true);
    view.setUint32(padded.length - 4, Math.floor(length / 536870912), true);
    var a0 = 0x67452301, b0 = 0xefcdab89 | 0, c0 = 0x98badcfe | 0, d0 = 0x10325476;
    var M = new Int32Array(16);
    for (var offset = 0; offset < padded.length; offset += 64) {
      for (var j = 0; j < 16; j++) { M[j] = view.getInt32(offset + j * 4, true); }
      var A = a0, B = b0, C = c0, D = d0;
      for (var n = 0; n < 64; n++) {
        var F, g;
        if (n < 16) { F = (B & C) | (~B & D); g = n; }
        else if (n < 32) { F = (D & B) | (~D & C); g = (5 * n + 1) % 16; }
        else if (n < 48) { F = B ^ C ^ D; g = (3 * n + 5) % 16; }
        else { F = C ^ (B | ~D); g = (7 * n) % 16; }
        var sum = (A + F + K[n] + M[g]) | 0;
        A = D; D = C; C = B;
        B = (B + ((sum << S[n]) | (sum >>> (32 - S[n])))) | 0;
      }
      a0 = (a0 + A) | 0; b0 = (b0 + B) | 0; c0 = (c0 + C) | 0; d0 = (d0 + D) | 0;
    }
    var out = "";
    [a0, b0, c0, d0].forEach(function (word) {
      for (var k = 0; k < 4; k++) { out += ((word >>> (8 * k)) & 0xff).toString(16).padStart(2, "0"); }
    });
    return out;
  }

  // --- the API, as the signed-in user -----------------------------------------------------------------
  function api(method, url, csrf, body) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var text = (data.title || ("HTTP " + response.status)) + (data.description ? ": " + data.description : "");
          throw new Error(text);
        }
        return data.data;
      });
    });
  }

  function putPart(url, blob, onProgress) {
    return new Promise(function (resolve, reject) {
      var request = new XMLHttpRequest();
      request.open("PUT", url);
      request.upload.onprogress = function (event) { onProgress(event.loaded); };
      request.onload = function () {
        if (request.status >= 200 && request.status < 300) { resolve(); }
        else { reject(new Error("The object store refused part upload (HTTP " + request.status + ")")); }
      };
      request.onerror = function () { reject(new Error("The object store could not be reached")); };
      request.send(blob);
    });
  }

  function setup(form) {
    var base = form.getAttribute("data-upload-api");
    var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    var bar = form.querySelector("progress");
    var status = form.querySelector("[data-upload-status]");
    var button = form.querySelector("button[type=submit]");

    function say(text, kind) {
      status.textContent = text;
      status.className = "banner " + (kind || "info");
      status.hidden = false;
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var file = form.querySelector("input[type=file]").files[0];
      var model = form.querySelector("[name=modelName]").value.trim();
      var version = parseInt(form.querySelector("[name=modelVersion]").value, 10);
      if (!file || !model || !version) { say("Choose a file and give the model name and version.", "error"); return; }
      var path = file.name;
      var memory = "imm-upload:" + base + ":" + model + "/" + version + "/" + path + ":" + file.size;
      var done = {};   // partNumber -> bytes already counted
      var sent = 0;
      var checksums = {};
      button.disabled = true;
      bar.max = file.size || 1;
      bar.value = 0;
      bar.hidden = false;
      say("Starting the upload of " + path + "...");

      function plan() {
        var previous = window.localStorage.getItem(memory);
        if (previous) {
          return api("GET", base + "/" + previous, csrf).then(function (state) {
            if (state.state === "OPEN") { say("Resuming an interrupted upload..."); return state; }
            return null;
          }).catch(function () { return null; }).then(function (state) {
            return state || api("POST", base, csrf, { modelName: model, modelVersion: version, path: path, size: file.size });
          });
        }
        return api("POST", base, csrf, { modelName: model, modelVersion: version, path: path, size: file.size });
      }

      function partBlob(state, number) {
        var start = (number - 1) * state.partSize;
        return file.slice(start, Math.min(file.size, start + state.partSize));
      }

      function checksum(blob) {
        return blob.arrayBuffer().then(md5);
      }

      plan().then(function (state) {
        window.localStorage.setItem(memory, state.uploadId);
        var missing = {};
        (state.missing || []).forEach(function (part) { missing[part.partNumber] = part.url; });
        (state.uploaded || []).forEach(function (part) { sent += part.size; });
        bar.value = sent;
        var chain = Promise.resolve();
        for (var number = 1; number <= state.partCount; number++) {
          (function (n) {
            chain = chain.then(function () {
              var blob = partBlob(state, n);
              return checksum(blob).then(function (digest) {
                checksums[n] = digest;
                if (!missing[n]) { return null; }
                say("Uploading part " + n + " of " + state.partCount + "...");
                return putPart(missing[n], blob, function (loaded) {
                  done[n] = loaded;
                  var total = sent;
                  Object.keys(done).forEach(function (key) { total += done[key]; });
                  bar.value = total;
                });
              });
            });
          })(number);
        }
        return chain.then(function () {
          bar.value = file.size;
          say("Checking the parts and assembling " + path + "...");
          var parts = Object.keys(checksums).map(function (n) { return { partNumber: parseInt(n, 10), md5: checksums[n] }; });
          return api("POST", base + "/" + state.uploadId + "/complete", csrf, { parts: parts });
        });
      }).then(function () {
        window.localStorage.removeItem(memory);
        say("Uploaded " + model + "/" + version + "/" + path + ".", "success");
        window.setTimeout(function () { window.location.reload(); }, 800);
      }).catch(function (error) {
        say("Upload failed: " + error.message + " Send the form again to resume.", "error");
      }).then(function () { button.disabled = false; });
    });
  }

  // Exposed for the console's own tests only.
  window.immMd5 = md5;

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-upload-api]"), setup);
  });
})();
