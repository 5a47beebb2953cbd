// Drag and drop, and progress, for the album's upload form. Without this
// script the form still works (a plain multipart POST).
(function () {
  var form = document.querySelector("form.upload");
  if (!form || !window.FormData) return;
  var input = form.querySelector("input[type=file]");
  var bar = form.querySelector("progress");
  var out = form.querySelector("output");
  // The page's language, from data-* attributes of the form ({n}, {list}, {status} are filled in).
  function say(key, fallback, vals) {
    var s = form.dataset[key] || fallback;
    for (var k in vals) s = s.split("{" + k + "}").join(String(vals[k]));
    return s;
  }
  function send(files) {
    if (!files.length) return;
    var data = new FormData();
    for (var i = 0; i < files.length; i++) data.append("files", files[i], files[i].name);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.dataset.api);
    bar.hidden = false;
    xhr.upload.onprogress = function (e) { if (e.lengthComputable) bar.value = (100 * e.loaded) / e.total; };
    xhr.onload = function () {
      bar.hidden = true;
      var res = {};
      try { res = JSON.parse(xhr.responseText); } catch (e) {}
      var files = res.files || [];
      var refused = files.filter(function (f) { return f.status === "refused"; });
      var added = files.length - refused.length;
      out.textContent = files.length ? say(added > 1 ? "addedMany" : "addedOne", "{n} added", { n: added }) +
        (refused.length ? ", " + say(refused.length > 1 ? "refusedMany" : "refusedOne", "{n} refused: {list}", {
          n: refused.length,
          list: refused.map(function (f) { return f.name + " (" + f.error + ")"; }).join("; ")
        }) : "") : say("failed", "Upload failed ({status})", { status: xhr.status });
      if (refused.length < files.length) setTimeout(function () { location.reload(); }, 800);
    };
    xhr.onerror = function () { bar.hidden = true; out.textContent = say("networkError", "Upload failed: network error", {}); };
    xhr.send(data);
  }
  form.addEventListener("submit", function (e) { e.preventDefault(); send(input.files); });
  ["dragover", "dragenter"].forEach(function (t) {
    document.addEventListener(t, function (e) { e.preventDefault(); form.classList.add("drop"); });
  });
  document.addEventListener("dragleave", function () { form.classList.remove("drop"); });
  document.addEventListener("drop", function (e) { e.preventDefault(); form.classList.remove("drop"); send(e.dataTransfer.files); });
})();
