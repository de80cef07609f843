// The account pages work without this file; it adds the live strength meter, the copy
// buttons, the resend countdown, and uploads by drag and drop with a progress bar.
"use strict";

const WORDS = ["Very weak", "Weak", "Fair", "Strong", "Very strong"];

function strengthMeter(input) {
  const meterBox = document.getElementById(input.id + "-meter");
  const meter = meterBox.querySelector("meter");
  const text = document.getElementById(input.id + "-meter-text");
  const emailField = input.dataset.emailField && document.getElementById(input.dataset.emailField);
  let timer = null;
  let asked = 0;

  function show(verdict) {
    meterBox.hidden = false;
    meter.value = verdict.score;
    text.replaceChildren();
    const line = document.createElement("p");
    const word = document.createElement("strong");
    word.textContent = WORDS[verdict.score] + ".";
    line.append(word);
    if (verdict.warning) line.append(" " + verdict.warning);
    text.append(line);
    if (verdict.suggestions && verdict.suggestions.length) {
      const list = document.createElement("ul");
      for (const suggestion of verdict.suggestions) {
        const item = document.createElement("li");
        item.textContent = suggestion;
        list.append(item);
      }
      text.append(list);
    }
  }

  async function ask() {
    const password = input.value;
    if (!password) {
      meterBox.hidden = true;
      text.replaceChildren();
      return;
    }
    const mine = ++asked;
    const body = { password };
    if (emailField && emailField.value) body.email = emailField.value;
    try {
      const response = await fetch("/api/passwords/strength", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const answer = await response.json();
      if (mine === asked && response.ok) show(answer.data);
    } catch (error) {
      // the meter is a help, not a gate: the server judges the password on submit
    }
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(ask, 250);
  });
}

function copyButton(button) {
  const source = document.getElementById(button.dataset.copy);
  const status = button.parentElement.querySelector("[data-copied]");
  if (!navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    const text = source.value !== undefined ? source.value : source.textContent.trim();
    try {
      await navigator.clipboard.writeText(text);
      if (status) status.textContent = "Copied.";
    } catch (error) {
      if (status) status.textContent = "Copying was not allowed; select the text and copy it.";
    }
  });
}

function countdown(button) {
  const counter = document.querySelector("[data-countdown]");
  let left = Number(button.dataset.waitSeconds);
  button.disabled = true;
  const tick = setInterval(() => {
    left -= 1;
    if (counter) counter.textContent = String(Math.max(left, 0));
    if (left <= 0) {
      clearInterval(tick);
      button.disabled = false;
      if (counter) counter.parentElement.textContent = "You can ask for a new code now.";
    }
  }, 1000);
}

function uploads(form) {
  const input = form.querySelector("input[type=file]");
  const zone = form.querySelector("[data-dropzone]");
  const bar = form.querySelector("progress");

  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (!event.dataTransfer.files.length) return;
    input.files = event.dataTransfer.files;
    form.requestSubmit();
  });

  form.addEventListener("submit", (event) => {
    if (!input.files.length) return; // the server says what is missing
    event.preventDefault();
    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    bar.hidden = false;
    bar.value = 0;
    request.upload.addEventListener("progress", (progress) => {
      if (progress.lengthComputable) bar.value = Math.round((progress.loaded / progress.total) * 100);
    });
    request.addEventListener("load", () => {
      if (request.status < 400) {
        window.location.assign(request.responseURL);
        return;
      }
      // the page the server answered with (its message tied to the field)
      const page = new DOMParser().parseFromString(request.responseText, "text/html");
      const main = page.querySelector("main");
      if (main) {
        document.querySelector("main").replaceWith(main);
        start(main);
      }
    });
    request.addEventListener("error", () => {
      bar.hidden = true;
      form.submit();
    });
    request.send(new FormData(form));
  });
}

function start(root) {
  root.querySelectorAll("input[data-strength]").forEach(strengthMeter);
  root.querySelectorAll("button[data-copy]").forEach(copyButton);
  root.querySelectorAll("button[data-wait-seconds]").forEach(countdown);
  const upload = root.querySelector("form#upload");
  if (upload) uploads(upload);
}

start(document);
