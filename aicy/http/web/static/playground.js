// The console's playground: streams a Responses API reply through the customer's own key (kept in this
// page's memory only, never sent to aicy except as the request's Authorization header), then shows the
// usage and what it cost at the model's prices. Blank lines and ":" comments (keep-alives) are skipped.
"use strict";

(function () {
  const form = document.getElementById("playground");
  if (!form) return;
  const modelSelect = form.elements.namedItem("model");
  const effortSelect = form.elements.namedItem("effort");
  const output = document.getElementById("output");
  const usageBox = document.getElementById("usage");
  const statusBox = document.getElementById("status");
  const sendButton = form.querySelector("button[type=submit]");

  function chosenModel() {
    return modelSelect.options[modelSelect.selectedIndex];
  }

  function fillEfforts() {
    const option = chosenModel();
    const efforts = (option.dataset.efforts || "").split(",").filter(Boolean);
    effortSelect.replaceChildren();
    const none = document.createElement("option");
    none.value = "";
    none.textContent = "—";
    effortSelect.appendChild(none);
    for (const effort of efforts) {
      const item = document.createElement("option");
      item.value = effort;
      item.textContent = effort;
      if (effort === option.dataset.defaultEffort) item.selected = true;
      effortSelect.appendChild(item);
    }
    effortSelect.disabled = efforts.length === 0;
  }

  function price(micro) {
    return "$" + (micro / 1e6).toFixed(6).replace(/0+$/, "").replace(/\.$/, ".00");
  }

  function showUsage(usage) {
    const option = chosenModel();
    const cached = (usage.input_tokens_details || {}).cached_tokens || 0;
    const reasoning = (usage.output_tokens_details || {}).reasoning_tokens || 0;
    const input = usage.input_tokens - cached;
    const micro = Math.ceil(
      (input * Number(option.dataset.input) +
        cached * Number(option.dataset.cached) +
        usage.output_tokens * Number(option.dataset.output)) / 1e6
    );
    usageBox.textContent =
      "input " + usage.input_tokens + " (cached " + cached + ") · output " + usage.output_tokens +
      " (reasoning " + reasoning + ") · " + price(micro);
  }

  function handle(event) {
    if (event.type === "response.output_text.delta") {
      output.textContent += event.delta;
    } else if (event.type === "response.reasoning_summary_text.delta") {
      output.textContent += event.delta;
    } else if (["response.completed", "response.incomplete", "response.failed"].includes(event.type)) {
      statusBox.textContent = event.response.status;
      if (event.response.usage) showUsage(event.response.usage);
      if (event.response.error) statusBox.textContent += ": " + event.response.error.message;
    } else if (event.type === "error" || event.error) {
      statusBox.textContent = (event.error || event).message || "error";
    }
  }

  async function send(submitEvent) {
    submitEvent.preventDefault();
    output.textContent = "";
    usageBox.textContent = "";
    statusBox.textContent = "…";
    sendButton.disabled = true;
    const body = { model: modelSelect.value, input: form.elements.namedItem("prompt").value, stream: true };
    if (effortSelect.value) body.reasoning = { effort: effortSelect.value };
    const maxTokens = Number(form.elements.namedItem("max_output_tokens").value);
    if (maxTokens) body.max_output_tokens = maxTokens;
    try {
      const reply = await fetch("/v1/responses", {
        method: "POST",
        headers: {
          "Authorization": "Bearer " + form.elements.namedItem("key").value.trim(),
          "Content-Type": "application/json",
        },
        body: JSON.stringify(body),
      });
      if (!reply.ok) {
        const problem = await reply.json().catch(() => ({}));
        statusBox.textContent = reply.status + ": " + ((problem.error || {}).message || reply.statusText);
        return;
      }
      const reader = reply.body.getReader();
      const decoder = new TextDecoder();
      let buffered = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += decoder.decode(value, { stream: true });
        let newline;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline).replace(/\r$/, "");
          buffered = buffered.slice(newline + 1);
          if (!line.startsWith("data:")) continue; // blank lines, ":" comments, "event:" names
          const data = line.slice(5).trim();
          if (data && data !== "[DONE]") handle(JSON.parse(data));
        }
      }
    } catch (error) {
      statusBox.textContent = String(error);
    } finally {
      sendButton.disabled = false;
    }
  }

  modelSelect.addEventListener("change", fillEfforts);
  form.addEventListener("submit", send);
  fillEfforts();
})();
