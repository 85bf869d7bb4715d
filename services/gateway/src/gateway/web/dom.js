// Building the page: elements from a tag, attributes (on* are listeners) and children.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value == null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  return fill(el, ...children);
}

/** Replace an element's children; null and false children are left out (they are the "if" of a list). */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((child) => child != null && child !== false));
  return el;
}
