// Shows only the questions that apply, as the server decides (fieldapp/forms/validate.py):
// an element with data-relevant='{"field", "values", "negate"}' is hidden and its inputs disabled
// (so they are not sent) unless the condition holds. Fields marked data-required become required
// only while shown. Without this script every question shows and the server still decides.
(function () {
  "use strict";
  var form = document.getElementById("record-form");
  if (!form) { return; }

  function values(name) {
    var chosen = [];
    form.querySelectorAll("[name='" + name + "']").forEach(function (input) {
      if (input.disabled) { return; }
      if ((input.type === "radio" || input.type === "checkbox") && !input.checked) { return; }
      if (input.value) { chosen.push(input.value); }
    });
    return chosen.length ? chosen : [""];
  }

  function holds(condition) {
    var found = values(condition.field).some(function (v) { return condition.values.indexOf(v) >= 0; });
    return condition.negate ? !found : found;
  }

  function update() {
    // Document order matters: a hidden question counts as unanswered for the ones after it.
    form.querySelectorAll("[data-relevant]").forEach(function (el) {
      el.hidden = !holds(JSON.parse(el.dataset.relevant));
      el.querySelectorAll("input, select, textarea").forEach(function (input) {
        input.disabled = isInsideHidden(input);
      });
    });
    form.querySelectorAll("[data-required], [data-required-if]").forEach(function (el) {
      var needed = el.dataset.requiredIf ? holds(JSON.parse(el.dataset.requiredIf)) : true;
      var inputs = el.matches("input, select, textarea") ? [el] : el.querySelectorAll("input[type=radio]");
      inputs.forEach(function (input) { input.required = needed && !isInsideHidden(input); });
    });
  }

  function isInsideHidden(el) {
    for (var node = el; node && node !== form; node = node.parentElement) {
      if (node.hidden) { return true; }
    }
    return false;
  }

  form.addEventListener("change", function (event) {
    var input = event.target;
    // The server ignores surrounding spaces; so must the browser's pattern check.
    if (input.matches("input[type=text], input[type=tel], input:not([type])")) { input.value = input.value.trim(); }
    update();
  });
  update();
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
})();
