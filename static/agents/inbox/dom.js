// Small DOM helpers. Text only: whatever a customer, the bot or Meta wrote goes in
// with textContent or as a DOM property, never parsed as HTML.

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

export function safeUrl(value) {
  // Only http(s) links and pictures: no javascript:, data: or relative tricks.
  try {
    const url = new URL(String(value || ""));
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

function initials(name) {
  const parts = String(name || "?").trim().split(/\s+/).filter(Boolean);
  return ((parts[0] || "?")[0] + (parts.length > 1 ? parts[parts.length - 1][0] : "")).toUpperCase();
}

function hue(text) {
  let h = 0;
  for (const ch of String(text)) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

export function fillAvatar(node, contact) {
  node.replaceChildren();
  node.style.setProperty("--avatar-hue", String(hue(contact.psid || contact.name)));
  node.append(el("span", { class: "avatar-initials", text: initials(contact.name) }));
  const src = safeUrl(contact.profile_pic);
  if (src) {
    const img = el("img", { alt: "", referrerPolicy: "no-referrer", loading: "lazy" });
    img.addEventListener("error", () => img.remove());
    img.src = src; // a DOM property: never parsed as markup
    node.append(img);
  }
  return node;
}

export function avatar(contact, extra = "") {
  return fillAvatar(el("span", { class: `avatar ${extra}` }), contact);
}
