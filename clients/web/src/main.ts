// The page: sign in (pasted token or the server's cookie), then the upload area and the files.
import { errorMessage } from '../../sdk/messages.ts';
import { StreamLineError } from '../../sdk/errors.ts';
import { byId, showError } from './dom.ts';
import { mountFilesPanel } from './files-panel.ts';
import { restore, serverUrl, signIn, signOut, type SignedIn } from './sign-in.ts';
import { mountUploader } from './uploader.ts';
import './styles.css';

const SIGNED_OUT_CODES = new Set(['token_expired', 'invalid_token', 'unauthenticated']);

async function start(): Promise<void> {
  const server = serverUrl();
  byId<HTMLInputElement>('server-input').value = server;
  const who = await restore(server);
  if (who) enter(who);
  else showSignIn();

  byId('sign-in-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = byId<HTMLTextAreaElement>('token-input').value.trim();
    const target = byId<HTMLInputElement>('server-input').value.trim().replace(/\/+$/, '') || server;
    signIn(target, token).then(
      (signedIn) => {
        showError(null);
        enter(signedIn);
      },
      (error: unknown) => showError(errorMessage(error)),
    );
  });
  byId('sign-out').addEventListener('click', () => {
    signOut();
    location.reload();
  });
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

  const onError = (error: unknown) => {
    if (error instanceof StreamLineError && SIGNED_OUT_CODES.has(error.code)) {
      signOut();
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
