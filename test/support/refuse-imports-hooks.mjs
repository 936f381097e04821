// The resolve hook of refuse-imports.mjs (runs on Node's module-hooks thread, with the process's environment).
const refused = (process.env.REFUSE_IMPORTS ?? '').split(',').filter(Boolean);

export async function resolve(specifier, context, nextResolve) {
  const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
  if (refused.includes(name)) {
    throw Object.assign(new Error(`Cannot find package '${specifier}' (refused by test/support/refuse-imports.mjs)`), { code: 'ERR_MODULE_NOT_FOUND' });
  }
  return nextResolve(specifier, context);
}
