// Which Vulkan driver (ICD) the tests run WebGPU on in Node. The unit tests take SwiftShader's,
// from Debian's chromium package (workers/node/gpu.ts); the f16 tests (test/unit/*.f16.test.ts)
// take Mesa's lavapipe, the CPU driver that offers `shader-f16` (SwiftShader has none), installed
// by scripts/ensure-system-deps.sh. Plain JavaScript: scripts/test.mjs runs it without a build.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Where the Vulkan loader looks for ICD manifests (system packages install into the first). */
const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];

/** How to get lavapipe, for the sentence a failing f16 pass prints. */
export const LAVAPIPE_ADVICE =
  "install Mesa's lavapipe 24 or later: as root on Debian 12 `bash scripts/ensure-system-deps.sh` adds bookworm-backports " +
  '(deb http://deb.debian.org/debian bookworm-backports main) and runs `apt-get install -y -t bookworm-backports mesa-vulkan-drivers`; ' +
  "elsewhere `apt-get install -y mesa-vulkan-drivers` where the release has Mesa 24 or later (Debian 12's own 22.3 is refused by Dawn), " +
  'or point VK_ICD_FILENAMES at the ICD JSON of a Vulkan driver whose adapter has shader-f16';

/**
 * The ICD manifest of Mesa's lavapipe, or undefined: `lvp_icd.json` (Mesa 24+) or
 * `lvp_icd.<arch>.json` (older packages), the machine's own architecture preferred.
 */
export function lavapipeIcd() {
  const arch = { x64: 'x86_64', arm64: 'aarch64', ia32: 'i686' }[process.arch] ?? process.arch;
  for (const dir of ICD_DIRS) {
    if (!existsSync(dir)) continue;
    const names = readdirSync(dir).filter((n) => /^lvp_icd(\.[\w-]+)?\.json$/.test(n));
    const pick = names.find((n) => n === 'lvp_icd.json') ?? names.find((n) => n === `lvp_icd.${arch}.json`) ?? names[0];
    if (pick) return join(dir, pick);
  }
  return undefined;
}
