// doctriage review page: keyboard shortcuts, box <-> field highlighting, drafts kept in the
// browser (and a warning before leaving with unsaved choices), and waiting for the next
// document. The page works without it (plain form posts); this only makes it quicker.
"use strict";

(function () {
  const body = document.body;
  const token = body.dataset.token || "";

  // ---------------------------------------------------------------- drafts
  // A document's unsaved choices live in localStorage under its id until the decision is
  // stored: a reload, or a review server restarted meanwhile, restores them.
  const drafts = {
    key: (id) => `doctriage-review-draft:${id}`,
    get(id) {
      try { return JSON.parse(localStorage.getItem(this.key(id)) || "null"); }
      catch (error) { return null; }
    },
    set(id, values) {
      try {
        localStorage.setItem(this.key(id), JSON.stringify({ saved_at: Date.now(), values }));
      } catch (error) { /* storage full or disabled: the beforeunload warning still stands */ }
    },
    remove(id) {
      try { localStorage.removeItem(this.key(id)); } catch (error) { /* disabled */ }
    },
  };
  // Documents the address says are settled (?decided=<id>, ...) need no draft any more.
  const settled = new URLSearchParams(window.location.search);
  ["decided", "amended", "identical", "kept"].forEach((name) => {
    const id = settled.get(name);
    if (id) drafts.remove(id);
  });

  function isTyping(el) {
    return el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" || (el.tagName === "INPUT" &&
      !["radio", "checkbox", "button", "submit"].includes(el.type)));
  }

  // ---------------------------------------------------------------- the document page
  function documentPage() {
    const form = document.getElementById("decision-form");
    const cards = Array.from(document.querySelectorAll(".field-card.flagged"));
    const progress = document.getElementById("progress");
    const noun = (progress && progress.closest("[data-noun]") || {dataset: {}}).dataset.noun ||
      "flagged field";
    const editable = form && !form.querySelector("fieldset.whole").disabled;
    let active = -1;
    let draftsOn = false;  // set once a stored draft has been restored

    function boxOf(card) {
      return card ? document.getElementById(card.dataset.box) : null;
    }

    // Show a box by scrolling the viewer only: scrollIntoView would also scroll the window,
    // which moves the page under a pointer that is about to click.
    function showInViewer(el) {
      const viewer = document.getElementById("viewer");
      if (!viewer || !el) return;
      const v = viewer.getBoundingClientRect();
      const r = el.getBoundingClientRect();
      viewer.scrollTop += (r.top + r.height / 2) - (v.top + v.height / 2);
      viewer.scrollLeft += (r.left + r.width / 2) - (v.left + v.width / 2);
    }

    // focus: move the focus to the card; scrollCard: bring the card into sight (key and box
    // navigation; never when the card is activated by a click or Tab inside it).
    function activate(index, focus, scrollCard) {
      if (!cards.length) return;
      index = Math.max(0, Math.min(cards.length - 1, index));
      document.querySelectorAll(".field-card.active, .box.active").forEach(
        (el) => el.classList.remove("active"));
      active = index;
      const card = cards[index];
      const box = boxOf(card);
      card.classList.add("active");
      if (box) {
        box.classList.add("active");
        showInViewer(box);
      }
      if (scrollCard !== false) card.scrollIntoView({ block: "nearest", behavior: "instant" });
      if (focus !== false) card.focus({ preventScroll: true });
    }

    function decision(card) {
      const checked = card.querySelector("input[type=radio]:checked");
      return checked ? checked.value : null;
    }

    function update() {
      let decided = 0;
      cards.forEach((card) => {
        const done = decision(card) !== null;
        card.classList.toggle("decided", done);
        if (done) decided += 1;
      });
      if (progress && cards.length) {
        progress.textContent = `${decided} of ${cards.length} ${noun}` +
          `${cards.length === 1 ? "" : "s"} decided`;
      }
      saveDraft();
    }

    function accept(index) {
      const card = cards[index];
      if (!card || !editable) return;
      const anyway = card.querySelector("input[type=radio][value=accept_anyway]");
      if (anyway) {  // a value that fails its schema: accept anyway needs a note
        anyway.checked = true;
        update();
        card.querySelector("input[name^='note.']").focus();
        return;
      }
      card.querySelector("input[type=radio][value=accept]").checked = true;
      update();
      if (index < cards.length - 1) activate(index + 1);
    }

    function absent(index) {
      const card = cards[index];
      if (!card || !editable) return;
      card.querySelector("input[type=radio][value=absent]").checked = true;
      update();
      const confirm = card.querySelector("input[name^='confirm.']");
      if (confirm) confirm.focus();
      else if (index < cards.length - 1) activate(index + 1);
    }

    // How each typed value is read, asked of the server as it is typed (the same reading the
    // decision uses: one rule, in one place), shown beside the box before anything is stored.
    const checkUrl = form ? form.getAttribute("action").replace(/decision$/, "check") : null;
    const refused = new Map();  // input -> its problem
    const reading = new Set();  // inputs whose new text the server has not read yet
    let sendWhenRead = false;  // a submit waits for those readings, so none goes unseen

    function read(input) {
      reading.delete(input);
      if (reading.size || !sendWhenRead) return;
      sendWhenRead = false;
      form.requestSubmit();
    }

    function checkLater(input) {
      const shown = document.getElementById(input.getAttribute("aria-describedby"));
      if (!shown || !checkUrl) return;
      refused.delete(input);  // until the server has read the new text, the server decides
      reading.add(input);
      shown.textContent = "";  // the last reading is of other text
      shown.classList.remove("refused");
      clearTimeout(input.checkTimer);
      input.checkTimer = setTimeout(async () => {
        const text = input.value;
        const data = new URLSearchParams({ path: input.dataset.field, text });
        try {
          const response = await fetch(checkUrl, {
            method: "POST", headers: { "X-Review-Token": token }, body: data,
          });
          const answer = await response.json();
          if (input.value !== text) return;  // typed on meanwhile: a later answer says
          shown.textContent = answer.problem || answer.shown || "";
          shown.classList.toggle("refused", Boolean(answer.problem));
          input.setAttribute("aria-invalid", answer.problem ? "true" : "false");
          if (answer.problem) refused.set(input, answer.problem);
          else refused.delete(input);
        } catch (error) {
          refused.delete(input);  // the server decides on submit
        }
        read(input);
      }, 150);
    }

    function chosen(input) {
      const card = input.closest(".field-card");
      if (card) return decision(card) === "correct";
      const hand = document.querySelector("input[name=outcome][value=entered_by_hand]");
      return Boolean(hand && hand.checked);
    }

    document.querySelectorAll(".correction[aria-describedby]").forEach((input) => {
      input.addEventListener("input", () => {
        const hand = input.closest(".hand-entry") &&
          document.querySelector("input[name=outcome][value=entered_by_hand]");
        if (hand) hand.checked = true;
        checkLater(input);
      });
    });
    if (form && editable) {
      form.addEventListener("submit", (event) => {
        if ([...reading].some(chosen)) {
          event.preventDefault();  // sent once each reading is shown (or refused)
          sendWhenRead = true;
          return;
        }
        const first = [...refused.keys()].find(chosen);
        if (!first) return;
        event.preventDefault();  // an invalid correction is never sent: its reason is beside it
        first.focus();
      });
    }

    function correct(index) {
      const card = cards[index];
      if (!card || !editable) return;
      card.querySelector("input[type=radio][value=correct]").checked = true;
      update();
      const input = card.querySelector(".correction");
      input.focus();
      input.select();
    }

    cards.forEach((card, index) => {
      card.addEventListener("focusin", () => {
        if (active !== index) activate(index, false, false);
      });
      card.addEventListener("change", update);
      const input = card.querySelector(".correction");
      if (input) {
        input.addEventListener("input", () => {
          card.querySelector("input[type=radio][value=correct]").checked = true;
          update();
        });
      }
    });

    // (A marked cell in a table is a plain link to its card: the card takes focus, which
    // activates it.)
    document.querySelectorAll(".box").forEach((box) => {
      box.addEventListener("click", (event) => {
        event.preventDefault();
        const index = cards.findIndex((card) => card.id === box.dataset.card);
        if (index >= 0) activate(index);
      });
    });
    document.querySelectorAll("a.goto").forEach((link) => {
      link.addEventListener("click", (event) => {
        const box = document.getElementById(link.dataset.target);
        if (!box) return;
        event.preventDefault();
        const index = cards.findIndex((card) => card.id === box.dataset.card);
        if (index >= 0) activate(index);
        else showInViewer(box);
      });
    });

    document.addEventListener("keydown", (event) => {
      if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
        if (form && editable) {
          event.preventDefault();
          form.requestSubmit();
        }
        return;
      }
      if (isTyping(event.target)) {
        if (event.key === "Escape") {
          event.preventDefault();
          const card = event.target.closest(".field-card");
          if (card) card.focus();
          else event.target.blur();
        }
        return;
      }
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      const current = active < 0 ? 0 : active;
      switch (event.key) {
        case "j": activate(active + 1); break;
        case "k": activate(active < 0 ? 0 : active - 1); break;
        case "a": accept(current); break;
        case "c": case "e": correct(current); break;
        case "+": case "=": zoomBy(1); break;
        case "-": zoomBy(-1); break;
        case "0": zoomTo(1); break;
        case "n": absent(current); break;
        default: return;
      }
      event.preventDefault();
    });

    const { zoomBy, zoomTo } = pageViewer();
    keepFocusClearOfTheBar();

    // Drafts and the warning before leaving with unsaved choices.
    const documentId = body.dataset.document;
    function snapshot() {
      const values = {};
      if (!form) return values;
      form.querySelectorAll("input[type=radio]:checked").forEach((radio) => {
        values[radio.name] = radio.value;
      });
      form.querySelectorAll(".correction").forEach((input) => {
        values[input.name] = input.value;
      });
      return values;
    }
    const initial = JSON.stringify(snapshot());
    const dirty = () => editable && JSON.stringify(snapshot()) !== initial;
    let leaving = false;

    function apply(values) {
      Object.entries(values).forEach(([name, value]) => {
        form.querySelectorAll(`[name="${CSS.escape(name)}"]`).forEach((input) => {
          if (input.type === "radio") input.checked = input.value === value;
          else input.value = value;
        });
      });
    }

    function saveDraft() {
      if (!draftsOn) return;
      if (dirty()) drafts.set(documentId, snapshot());
      else drafts.remove(documentId);
    }

    function restore() {
      const draft = drafts.get(documentId);
      if (!draft || !draft.values) return;
      apply(draft.values);
      if (!dirty()) return;
      // Restored text is read again, as if typed: its reading shows before anything is stored.
      form.querySelectorAll(".correction[aria-describedby]").forEach((input) => {
        if (input.value !== input.defaultValue) checkLater(input);
      });
      const note = document.createElement("div");
      note.className = "notice";
      note.id = "draft-restored";
      note.setAttribute("role", "status");
      const when = new Date(draft.saved_at).toLocaleTimeString();
      note.innerHTML = "<p></p><button type=\"button\" class=\"secondary\">Discard them</button>";
      note.querySelector("p").textContent =
        `Your unsaved choices from ${when} are restored (kept in this browser).`;
      note.querySelector("button").addEventListener("click", () => {
        apply(JSON.parse(initial));
        form.querySelectorAll("input[type=radio]").forEach((radio) => {
          if (!(radio.name in JSON.parse(initial))) radio.checked = false;
        });
        drafts.remove(documentId);
        note.remove();
        update();
      });
      form.parentNode.insertBefore(note, form);
    }

    if (documentId && body.dataset.decided === "1") drafts.remove(documentId);
    if (documentId && editable) {
      restore();
      draftsOn = true;
      form.addEventListener("input", saveDraft);
      form.addEventListener("change", saveDraft);
      document.querySelectorAll("form").forEach((f) => {
        f.addEventListener("submit", () => { leaving = true; });
      });
      window.addEventListener("beforeunload", (event) => {
        if (leaving || !dirty()) return;
        event.preventDefault();
        event.returnValue = "";  // older browsers need it set to show the prompt
      });
    }

    update();
    const summary = document.getElementById("error-summary");
    if (summary) {
      summary.focus();
    } else if (cards.length && editable) {
      activate(0, false, false);
    }
  }

  // ---------------------------------------------------------------- the page viewer
  // Zoom keeps the point at the viewer's centre in place; a mouse drag pans (touch scrolls
  // natively); the page jump scrolls the viewer to a page and follows the scrolling.
  const ZOOMS = [0.5, 0.75, 1, 1.25, 1.5, 2, 3, 4];

  function pageViewer() {
    const viewer = document.getElementById("viewer");
    const bar = document.querySelector(".viewer-bar");
    const none = { zoomBy() {}, zoomTo() {} };
    if (!viewer || !bar) return none;
    bar.hidden = false;
    const level = document.getElementById("zoom-level");
    const jump = document.getElementById("page-jump");
    const figures = Array.from(viewer.querySelectorAll("figure.page"));
    let zoom = 1;

    function zoomTo(next) {
      next = Math.max(ZOOMS[0], Math.min(ZOOMS[ZOOMS.length - 1], next));
      const x = (viewer.scrollLeft + viewer.clientWidth / 2) / viewer.scrollWidth;
      const y = (viewer.scrollTop + viewer.clientHeight / 2) / viewer.scrollHeight;
      zoom = next;
      viewer.style.setProperty("--zoom", String(zoom));
      viewer.scrollLeft = x * viewer.scrollWidth - viewer.clientWidth / 2;
      viewer.scrollTop = y * viewer.scrollHeight - viewer.clientHeight / 2;
      level.textContent = `${Math.round(zoom * 100)}%`;
      viewer.classList.toggle("pannable", viewer.scrollWidth > viewer.clientWidth ||
        viewer.scrollHeight > viewer.clientHeight);
    }

    function zoomBy(step) {
      const i = ZOOMS.findIndex((z) => z >= zoom - 1e-9);
      zoomTo(ZOOMS[Math.max(0, Math.min(ZOOMS.length - 1, (i < 0 ? ZOOMS.length - 1 : i) + step))]);
    }

    bar.addEventListener("click", (event) => {
      const button = event.target.closest("[data-zoom]");
      if (!button) return;
      const how = button.dataset.zoom;
      if (how === "fit") zoomTo(1);
      else zoomBy(how === "in" ? 1 : -1);
    });

    if (jump) {
      jump.addEventListener("change", () => {
        const figure = figures[Number(jump.value)];
        if (figure) {
          viewer.scrollTop += figure.getBoundingClientRect().top -
            viewer.getBoundingClientRect().top;
        }
      });
      viewer.addEventListener("scroll", () => {
        const top = viewer.getBoundingClientRect().top + viewer.clientHeight / 3;
        let current = 0;
        figures.forEach((figure, i) => {
          if (figure.getBoundingClientRect().top <= top) current = i;
        });
        if (document.activeElement !== jump) jump.value = String(current);
      }, { passive: true });
    }

    let drag = null;
    viewer.addEventListener("pointerdown", (event) => {
      if (event.pointerType !== "mouse" || event.button !== 0 || event.target.closest(".box")) {
        return;
      }
      drag = { x: event.clientX, y: event.clientY, left: viewer.scrollLeft, top: viewer.scrollTop };
      viewer.setPointerCapture(event.pointerId);
      viewer.classList.add("panning");
      event.preventDefault();  // no image drag, no text selection
    });
    viewer.addEventListener("pointermove", (event) => {
      if (!drag) return;
      viewer.scrollLeft = drag.left - (event.clientX - drag.x);
      viewer.scrollTop = drag.top - (event.clientY - drag.y);
    });
    // Ctrl+wheel (and a touchpad pinch, which Chromium sends as one) zooms the page image.
    viewer.addEventListener("wheel", (event) => {
      if (!event.ctrlKey) return;
      event.preventDefault();
      zoomBy(event.deltaY < 0 ? 1 : -1);
    }, { passive: false });
    viewer.addEventListener("dragstart", (event) => event.preventDefault());  // the image's
    const stop = () => { drag = null; viewer.classList.remove("panning"); };
    viewer.addEventListener("pointerup", stop);
    viewer.addEventListener("pointercancel", stop);
    zoomTo(1);
    return { zoomBy, zoomTo };
  }

  // The decision bar is sticky: the CSS scroll padding that keeps focus clear of it needs its
  // real height, which changes with the width (its row wraps).
  function keepFocusClearOfTheBar() {
    const bar = document.querySelector(".submit-row");
    if (!bar || !window.ResizeObserver) return;
    new ResizeObserver(() => {
      document.documentElement.style.setProperty("--bar-height", `${bar.offsetHeight}px`);
    }).observe(bar);
  }

  // ---------------------------------------------------------------- the waiting page
  function waitingPage() {
    if (body.dataset.auto !== "1") return;
    const status = document.getElementById("wait-status");
    const decided = document.getElementById("decided");
    const duplicates = document.getElementById("duplicates");
    let stopped = false;
    window.addEventListener("pagehide", () => { stopped = true; });

    async function poll() {
      while (!stopped) {
        try {
          const response = await fetch("/api/next", {
            method: "POST",
            headers: { "X-Review-Token": token },
          });
          const answer = await response.json();
          if (answer.url) {
            window.location.assign(answer.url);
            return;
          }
          if (decided) decided.textContent = answer.decided;
          if (duplicates) duplicates.textContent = answer.duplicates_acknowledged;
          status.textContent = "The review queue is empty (checked " +
            new Date().toLocaleTimeString() + "); still waiting…";
        } catch (error) {
          status.textContent = "Cannot reach the review server; retrying…";
          await new Promise((resolve) => setTimeout(resolve, 3000));
        }
      }
    }
    poll();
  }

  if (body.dataset.page === "document") documentPage();
  if (body.dataset.page === "waiting") waitingPage();
})();
