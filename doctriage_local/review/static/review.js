// doctriage review page: keyboard shortcuts, box <-> field highlighting, and waiting for the
// next document. The page works without it (plain form posts); this only makes it quicker.
"use strict";

(function () {
  const body = document.body;
  const token = body.dataset.token || "";

  function isTyping(el) {
    return el && (el.tagName === "TEXTAREA" || (el.tagName === "INPUT" &&
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

    function boxOf(card) {
      return card ? document.getElementById(card.dataset.box) : null;
    }

    function activate(index, focus) {
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
        box.scrollIntoView({ block: "center", behavior: "instant" });
      }
      card.scrollIntoView({ block: "nearest", behavior: "instant" });
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

    function checkLater(input) {
      const reading = document.getElementById(input.getAttribute("aria-describedby"));
      if (!reading || !checkUrl) return;
      refused.delete(input);  // until the server has read the new text, the server decides
      clearTimeout(input.checkTimer);
      input.checkTimer = setTimeout(async () => {
        const data = new URLSearchParams({ path: input.dataset.field, text: input.value });
        try {
          const response = await fetch(checkUrl, {
            method: "POST", headers: { "X-Review-Token": token }, body: data,
          });
          const answer = await response.json();
          reading.textContent = answer.problem || answer.shown || "";
          reading.classList.toggle("refused", Boolean(answer.problem));
          input.setAttribute("aria-invalid", answer.problem ? "true" : "false");
          if (answer.problem) refused.set(input, answer.problem);
          else refused.delete(input);
        } catch (error) {
          refused.delete(input);  // the server decides on submit
        }
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
        if (active !== index) activate(index, false);
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
        else box.scrollIntoView({ block: "center", behavior: "instant" });
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
        case "n": absent(current); break;
        default: return;
      }
      event.preventDefault();
    });

    update();
    const summary = document.getElementById("error-summary");
    if (summary) {
      summary.focus();
    } else if (cards.length && editable) {
      activate(0, false);
    }
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
