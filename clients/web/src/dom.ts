// The few DOM helpers the page needs: find an element by id, build one with children.
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from index.html`);
  return found as T;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> & { className?: string; dataset?: Record<string, string> } = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  const { dataset, ...rest } = props;
  Object.assign(node, rest);
  for (const [k, v] of Object.entries(dataset ?? {})) node.dataset[k] = v;
  node.append(...children);
  return node;
}

let toastTimer: ReturnType<typeof setTimeout> | undefined;

/** A short confirmation at the bottom of the page. */
export function toast(message: string): void {
  const box = byId('toast');
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (box.hidden = true), 5000);
}

/** An error in words at the top of the page, until dismissed or replaced. */
export function showError(message: string | null): void {
  const banner = byId('banner');
  banner.hidden = message === null;
  banner.replaceChildren();
  if (message === null) return;
  const close = el('button', { type: 'button', className: 'banner-close', ariaLabel: 'Dismiss', textContent: '×' });
  close.addEventListener('click', () => showError(null));
  banner.append(el('span', { textContent: message }), close);
}
