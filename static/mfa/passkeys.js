// Passkeys (WebAuthn) for forms marked data-passkey="register" or "signin": ask the server
// for options (POST, CSRF token), let the browser create or use a credential, put its JSON
// answer in the form's hidden `credential` field and submit the form normally.
(() => {
  "use strict";

  const toBuffer = (text) => {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)).buffer;
  };
  const toText = (buffer) =>
    btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

  const creationOptions = (o) => ({
    ...o,
    challenge: toBuffer(o.challenge),
    user: { ...o.user, id: toBuffer(o.user.id) },
    excludeCredentials: (o.excludeCredentials || []).map((c) => ({ ...c, id: toBuffer(c.id) })),
  });
  const requestOptions = (o) => ({
    ...o,
    challenge: toBuffer(o.challenge),
    allowCredentials: (o.allowCredentials || []).map((c) => ({ ...c, id: toBuffer(c.id) })),
  });

  const answer = (credential) => {
    if (typeof credential.toJSON === "function") return credential.toJSON();
    const r = credential.response;
    const response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      response.userHandle = r.userHandle ? toText(r.userHandle) : null;
    }
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment,
    };
  };

  const run = async (form) => {
    const error = form.querySelector("[data-passkey-error]");
    error.hidden = true;
    try {
      if (!window.PublicKeyCredential) throw new Error("This browser does not support passkeys.");
      const reply = await fetch(form.dataset.optionsUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value },
      });
      if (!reply.ok || !reply.headers.get("Content-Type").startsWith("application/json")) {
        window.location.reload();
        return;
      }
      const options = await reply.json();
      const credential =
        form.dataset.passkey === "register"
          ? await navigator.credentials.create({ publicKey: creationOptions(options) })
          : await navigator.credentials.get({ publicKey: requestOptions(options) });
      form.querySelector("[name=credential]").value = JSON.stringify(answer(credential));
      form.submit();
    } catch (exc) {
      error.textContent =
        exc && exc.name === "SecurityError"
          ? "Passkeys need the console's domain name (for example localhost, not 127.0.0.1)."
          : "No passkey was used. " + (exc && exc.message ? exc.message : "");
      error.hidden = false;
    }
  };

  document.querySelectorAll("form[data-passkey]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      run(form);
    });
  });
})();
