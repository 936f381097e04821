// The page: sign in (pasted token or the server's cookie) to the server it names, then the upload
// area and the files.
import { errorMessage } from '../../sdk/messages.ts';
import { StreamLineError } from '../../sdk/errors.ts';
import { byId, showError } from './dom.ts';
import { mountFilesPanel } from './files-panel.ts';
import { chooseServer, parseServer, restore, signIn, signOut, type SignedIn } from './sign-in.ts';
import { mountUploader } from './uploader.ts';
import './styles.css';

const SIGNED_OUT_CODES = new Set(['token_expired', 'invalid_token', 'unauthenticated']);

async function start(): Promise<void> {
  const { server, problem } = chooseServer();
  showServer(server);
  if (problem) showError(problem);
  const who = await restore(server).catch((error: unknown) => {
    if (isSignedOut(error)) signOut(server);
    showError(errorMessage(error));
    return null;
  });
  if (who) enter(who);
  else showSignIn();

  // The card always names where the token is about to go, as the address is typed.
  byId('server-input').addEventListener('input', (event) => {
    const typed = (event.target as HTMLInputElement).value;
    byId('sign-in-server').textContent = typed.trim() === '' ? server : (parseServer(typed) ?? typed);
  });
  byId('sign-in-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = byId<HTMLTextAreaElement>('token-input').value.trim();
    const typed = byId<HTMLInputElement>('server-input').value;
    const target = typed.trim() === '' ? server : parseServer(typed);
    if (target === null) return showError('The server address must be an http:// or https:// address, such as https://upload.example.com.');
    signIn(target, token, { remember: true }).then(
      (signedIn) => {
        showError(null);
        enter(signedIn);
      },
      (error: unknown) => showError(errorMessage(error)),
    );
  });
}

/** The sign-in form names the server a token will be sent to; another origin's is shown open. */
function showServer(server: string): void {
  byId('sign-in-server').textContent = server;
  byId<HTMLInputElement>('server-input').value = server;
  const elsewhere = new URL(server).origin !== location.origin;
  byId<HTMLDetailsElement>('server-details').open = elsewhere;
  byId('other-server').hidden = !elsewhere;
}

function isSignedOut(error: unknown): boolean {
  return error instanceof StreamLineError && SIGNED_OUT_CODES.has(error.code);
}

function showSignIn(message?: string): void {
  byId('workspace').hidden = true;
  byId('account').hidden = true;
  byId('sign-in').hidden = false;
  if (message) showError(message);
}

function enter(who: SignedIn): void {
  byId('sign-in').hidden = true;
  byId('workspace').hidden = false;
  byId('account').hidden = false;
  byId('who').textContent = who.userId ? `Signed in as ${who.userId}` : 'Signed in';

  byId('sign-out').addEventListener('click', () => {
    signOut(who.server);
    location.reload();
  });
  const onError = (error: unknown) => {
    if (isSignedOut(error)) {
      signOut(who.server);
      return showSignIn(errorMessage(error));
    }
    showError(errorMessage(error));
  };
  const panel = mountFilesPanel(who, onError);
  mountUploader(byId('dashboard'), who, {
    folder: () => byId<HTMLInputElement>('folder-input').value.trim().replace(/^\/+|\/+$/g, ''),
    onUploaded: () => void panel.refresh().catch(onError),
    onError: (message, known) => (known ? onError(known) : showError(message)),
  });
  void panel.refresh().catch(onError);
}

void start();
