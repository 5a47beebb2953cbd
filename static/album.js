// The album's lightbox (keyboard and swipe) and live updates (server-sent
// events). Without this script every thumbnail links to its media page and
// the page shows what was there when it loaded.
(function () {
  var box = document.querySelector("dialog.lightbox");
  var links = Array.prototype.slice.call(document.querySelectorAll(".grid a[data-preview]"));
  if (box && box.showModal && links.length) {
    var stage = box.querySelector(".stage"), details = box.querySelector(".details"), at = 0;
    var show = function (i) {
      at = (i + links.length) % links.length;
      var a = links[at], k = a.dataset.kind, el;
      if (k === "video" || k === "animation" || k === "video_note") {
        el = document.createElement("video"); el.controls = true; el.preload = "metadata"; el.src = a.dataset.file;
      } else if (k === "audio" || k === "voice") {
        el = document.createElement("audio"); el.controls = true; el.preload = "metadata"; el.src = a.dataset.file;
      } else {
        el = document.createElement("img"); el.src = a.dataset.preview; el.alt = a.title;
      }
      stage.replaceChildren(el);
      details.href = a.href;
    };
    links.forEach(function (a, i) {
      a.addEventListener("click", function (e) {
        if (e.ctrlKey || e.metaKey || e.shiftKey) return;
        e.preventDefault(); show(i); box.showModal();
      });
    });
    box.addEventListener("click", function (e) {
      var go = e.target.closest("[data-go]");
      if (go) show(at + Number(go.dataset.go));
      else if (e.target.closest("[data-close]") || e.target === box) box.close();
    });
    box.addEventListener("keydown", function (e) {
      if (e.key === "ArrowRight") show(at + 1);
      else if (e.key === "ArrowLeft") show(at - 1);
    });
    box.addEventListener("close", function () { stage.replaceChildren(); });
    var x0 = null;
    box.addEventListener("pointerdown", function (e) { x0 = e.clientX; });
    box.addEventListener("pointerup", function (e) {
      if (x0 !== null && Math.abs(e.clientX - x0) > 50) show(at + (e.clientX < x0 ? 1 : -1));
      x0 = null;
    });
  }
  var live = document.querySelector("p.live[data-events]");
  if (live && window.EventSource && !/[?&]cursor=/.test(location.search)) {
    var es = new EventSource(live.dataset.events);
    es.onopen = function () { live.dataset.connected = "1"; };
    es.addEventListener("media.added", function () { live.hidden = false; });
  }
})();
