// The user's files below the upload area: folder, name, size, date; usage against the quota as
// a bar; "Copy link" (a signed URL), multi-select → "Download as ZIP", delete.
import type { FileRecord } from '../../sdk/index.ts';
import { formatBytes } from '../../shared/format.ts';
import { byId, el, toast } from './dom.ts';
import type { SignedIn } from './sign-in.ts';

const PAGE = 100;

export interface FilesPanel {
  refresh(): Promise<void>;
}

export function mountFilesPanel(who: SignedIn, onError: (error: unknown) => void): FilesPanel {
  const rows = byId('file-rows');
  const selected = new Set<string>();
  let files: FileRecord[] = [];
  let cursor: string | null = null;

  const guard = (action: () => Promise<void>) => () => void action().catch(onError);

  async function refresh(): Promise<void> {
    const [page, usage] = await Promise.all([who.session.listMyFiles({ limit: PAGE }), who.session.usage()]);
    files = page.files;
    cursor = page.next_cursor;
    for (const key of [...selected]) if (!files.some((f) => f.key === key)) selected.delete(key);
    render();
    const share = usage.quota_bytes > 0 ? usage.used_bytes / usage.quota_bytes : 0;
    byId('usage-text').textContent = `${formatBytes(usage.used_bytes)} of ${formatBytes(usage.quota_bytes)} used` +
      (usage.reserved_bytes > 0 ? ` · ${formatBytes(usage.reserved_bytes)} reserved by uploads in progress` : '');
    const fill = byId('usage-fill');
    fill.style.width = `${Math.min(100, share * 100).toFixed(1)}%`;
    fill.classList.toggle('high', share > 0.9);
  }

  async function loadMore(): Promise<void> {
    if (!cursor) return;
    const page = await who.session.listMyFiles({ limit: PAGE, cursor });
    files = [...files, ...page.files];
    cursor = page.next_cursor;
    render();
  }

  function render(): void {
    rows.replaceChildren(...files.map(row));
    byId('empty').hidden = files.length > 0;
    byId('files').hidden = files.length === 0;
    byId('load-more').hidden = cursor === null;
    renderSelection();
  }

  function row(file: FileRecord): HTMLTableRowElement {
    const check = el('input', { type: 'checkbox', checked: selected.has(file.key), ariaLabel: `Select ${file.filename}` });
    check.addEventListener('change', () => {
      if (check.checked) selected.add(file.key);
      else selected.delete(file.key);
      renderSelection();
    });
    const copy = el('button', { type: 'button', className: 'button small', textContent: 'Copy link' });
    copy.addEventListener('click', guard(() => copyLink(file)));
    const remove = el('button', { type: 'button', className: 'button small danger', textContent: 'Delete' });
    remove.addEventListener('click', guard(() => removeFiles([file])));
    const created = new Date(file.created_at);
    return el('tr', { dataset: { key: file.key } },
      el('td', { className: 'check' }, check),
      el('td', { className: 'name', title: file.filename }, file.filename),
      el('td', { className: 'folder' }, file.folder || '—'),
      el('td', { className: 'num size' }, formatBytes(file.size)),
      el('td', { className: 'date', title: file.created_at }, created.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })),
      el('td', { className: 'actions' }, copy, remove),
    );
  }

  function renderSelection(): void {
    const n = selected.size;
    byId<HTMLButtonElement>('zip-selected').disabled = n === 0;
    byId<HTMLButtonElement>('delete-selected').disabled = n === 0;
    byId('selection-count').textContent = n === 0 ? '' : `${n} selected`;
    const all = byId<HTMLInputElement>('select-all');
    all.checked = n > 0 && n === files.length;
    all.indeterminate = n > 0 && n < files.length;
  }

  async function copyLink(file: FileRecord): Promise<void> {
    const link = await who.session.signedUrl(file.key);
    await navigator.clipboard.writeText(link.url);
    const until = new Date(link.expires_at).toLocaleTimeString(undefined, { timeStyle: 'short' });
    toast(`Link to “${file.filename}” copied. Anyone with it can download the file until ${until}.`);
  }

  async function removeFiles(targets: FileRecord[]): Promise<void> {
    const what = targets.length === 1 ? `“${targets[0]!.filename}”` : `${targets.length} files`;
    if (!confirm(`Delete ${what}? This cannot be undone.`)) return;
    for (const file of targets) await who.session.deleteFile(file.key);
    toast(`Deleted ${what}.`);
    await refresh();
  }

  async function downloadZip(): Promise<void> {
    const batch = await who.session.batchDownload([...selected]);
    const link = el('a', { href: batch.url, download: '' });
    document.body.append(link);
    link.click();
    link.remove();
    toast(`Preparing a ZIP of ${selected.size} file${selected.size === 1 ? '' : 's'}…`);
  }

  byId('select-all').addEventListener('change', (event) => {
    const on = (event.target as HTMLInputElement).checked;
    selected.clear();
    if (on) for (const f of files) selected.add(f.key);
    render();
  });
  byId('zip-selected').addEventListener('click', guard(downloadZip));
  byId('delete-selected').addEventListener('click', guard(() => removeFiles(files.filter((f) => selected.has(f.key)))));
  byId('refresh').addEventListener('click', guard(refresh));
  byId('load-more').addEventListener('click', guard(loadMore));
  return { refresh };
}
