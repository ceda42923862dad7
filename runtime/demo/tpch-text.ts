// The word lists and sentence grammar of TPC-H's dbgen (dists.dss), and the two pools the
// generator cuts strings from: a text pool of grammatical nonsense for comments ("furiously
// final packages sleep carefully."), and a pool of random characters for addresses. As in
// dbgen, a comment is a random slice of the text pool, so the spec's word frequencies hold:
// 'special ... requests' (Q13) appears in some comments and not in others.
//
// Both pools come from a fixed-seed generator, so every run builds the same bytes.

type Weighted = readonly (readonly [string, number])[];

const NOUNS: Weighted = [
  ['packages', 40], ['requests', 40], ['accounts', 40], ['deposits', 40], ['foxes', 20], ['ideas', 20],
  ['theodolites', 20], ['pinto beans', 20], ['instructions', 20], ['dependencies', 10], ['excuses', 10],
  ['platelets', 10], ['asymptotes', 10], ['courts', 5], ['dolphins', 5], ['multipliers', 1], ['sauternes', 1],
  ['warthogs', 1], ['frets', 1], ['dinos', 1], ['attainments', 1], ['somas', 1], ['Tiresias', 1], ['patterns', 1],
  ['forges', 1], ['braids', 1], ['frays', 1], ['warhorses', 1], ['dugouts', 1], ['notornis', 1], ['epitaphs', 1],
  ['pearls', 1], ['tithes', 1], ['waters', 1], ['orbits', 1], ['gifts', 1], ['sheaves', 1], ['depths', 1],
  ['sentiments', 1], ['decoys', 1], ['realms', 1], ['pains', 1], ['grouches', 1], ['escapades', 1], ['hockey players', 1],
];

const VERBS: Weighted = [
  ['sleep', 20], ['wake', 20], ['are', 20], ['cajole', 20], ['haggle', 20], ['nag', 10], ['use', 10], ['boost', 10],
  ['affix', 5], ['detect', 5], ['integrate', 5], ['maintain', 1], ['nod', 1], ['was', 1], ['lose', 1], ['sublate', 1],
  ['solve', 1], ['thrash', 1], ['promise', 1], ['engage', 1], ['hinder', 1], ['print', 1], ['x-ray', 1], ['breach', 1],
  ['eat', 1], ['grow', 1], ['impress', 1], ['mold', 1], ['poach', 1], ['serve', 1], ['run', 1], ['dazzle', 1],
  ['snooze', 1], ['doze', 1], ['unwind', 1], ['kindle', 1], ['play', 1], ['hang', 1], ['believe', 1], ['doubt', 1],
];

const ADJECTIVES: Weighted = [
  ['special', 20], ['pending', 20], ['unusual', 20], ['express', 20], ['furious', 1], ['sly', 1], ['careful', 1],
  ['blithe', 1], ['quick', 1], ['fluffy', 1], ['slow', 1], ['quiet', 1], ['ruthless', 1], ['thin', 1], ['close', 1],
  ['dogged', 1], ['daring', 1], ['brave', 1], ['stealthy', 1], ['permanent', 1], ['enticing', 1], ['idle', 1],
  ['busy', 1], ['regular', 50], ['final', 40], ['ironic', 40], ['even', 30], ['bold', 20], ['silent', 10],
];

const ADVERBS: Weighted = [
  ['sometimes', 1], ['always', 1], ['never', 1], ['furiously', 50], ['slyly', 50], ['carefully', 50],
  ['blithely', 40], ['quickly', 30], ['fluffily', 20], ['slowly', 1], ['quietly', 1], ['ruthlessly', 1],
  ['thinly', 1], ['closely', 1], ['doggedly', 1], ['daringly', 1], ['bravely', 1], ['stealthily', 1],
  ['permanently', 1], ['enticingly', 1], ['idly', 1], ['busily', 1], ['regularly', 1], ['finally', 1],
  ['ironically', 1], ['evenly', 1], ['boldly', 1], ['silently', 1],
];

const PREPOSITIONS: Weighted = [
  ['about', 50], ['above', 50], ['according to', 50], ['across', 50], ['after', 50], ['against', 40], ['along', 40],
  ['alongside of', 30], ['among', 30], ['around', 20], ['at', 10], ['atop', 1], ['before', 1], ['behind', 1],
  ['beneath', 1], ['beside', 1], ['besides', 1], ['between', 1], ['beyond', 1], ['by', 1], ['despite', 1],
  ['during', 1], ['except', 1], ['for', 1], ['from', 1], ['in place of', 1], ['inside', 1], ['instead of', 1],
  ['into', 1], ['near', 1], ['of', 1], ['on', 1], ['outside', 1], ['over', 1], ['past', 1], ['since', 1],
  ['through', 1], ['throughout', 1], ['to', 1], ['toward', 1], ['under', 1], ['until', 1], ['up', 1], ['upon', 1],
  ['without', 1], ['with', 1], ['within', 1],
];

const AUXILIARIES: Weighted = [
  ['do', 1], ['may', 1], ['might', 1], ['shall', 1], ['will', 1], ['would', 1], ['can', 1], ['could', 1],
  ['should', 1], ['ought to', 1], ['must', 1], ['will have to', 1], ['shall have to', 1], ['could have to', 1],
  ['should have to', 1], ['must have to', 1], ['need to', 1], ['try to', 1],
];

const TERMINATORS: Weighted = [['.', 50], [';', 1], [':', 1], ['?', 1], ['!', 1], ['--', 1]];

/** Sentence shapes: N noun phrase, V verb phrase, P prepositional phrase, T terminator. */
const GRAMMAR: Weighted = [['N V T', 3], ['N V P T', 3], ['N V N T', 3], ['N P V N T', 1], ['N P V P T', 1]];
/** Noun phrases: N noun, J adjective, D adverb ("J, J N" puts a comma after the first). */
const NOUN_PHRASES: Weighted = [['N', 10], ['J N', 20], ['J, J N', 10], ['D J N', 50]];
/** Verb phrases: V verb, X auxiliary, D adverb. */
const VERB_PHRASES: Weighted = [['V', 30], ['X V', 1], ['V D', 40], ['X V D', 1]];

/** The 92 colour words part names are made of, in dists.dss order. */
export const COLORS: readonly string[] = [
  'almond', 'antique', 'aquamarine', 'azure', 'beige', 'bisque', 'black', 'blanched', 'blue', 'blush', 'brown',
  'burlywood', 'burnished', 'chartreuse', 'chiffon', 'chocolate', 'coral', 'cornflower', 'cornsilk', 'cream', 'cyan',
  'dark', 'deep', 'dim', 'dodger', 'drab', 'firebrick', 'floral', 'forest', 'frosted', 'gainsboro', 'ghost',
  'goldenrod', 'green', 'grey', 'honeydew', 'hot', 'indian', 'ivory', 'khaki', 'lace', 'lavender', 'lawn', 'lemon',
  'light', 'lime', 'linen', 'magenta', 'maroon', 'medium', 'metallic', 'midnight', 'mint', 'misty', 'moccasin',
  'navajo', 'navy', 'olive', 'orange', 'orchid', 'pale', 'papaya', 'peach', 'peru', 'pink', 'plum', 'powder', 'puff',
  'purple', 'red', 'rose', 'rosy', 'royal', 'saddle', 'salmon', 'sandy', 'seashell', 'sienna', 'sky', 'slate',
  'smoke', 'snow', 'spring', 'steel', 'tan', 'thistle', 'tomato', 'turquoise', 'violet', 'wheat', 'white', 'yellow',
];

/** mulberry32: a small, fast 32-bit generator; its only job is to be the same everywhere. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function picker(random: () => number) {
  return (dist: Weighted): string => {
    const total = dist.reduce((n, [, w]) => n + w, 0);
    let r = random() * total;
    for (const [word, weight] of dist) {
      r -= weight;
      if (r < 0) return word;
    }
    return dist[dist.length - 1][0];
  };
}

function sentence(pick: (d: Weighted) => string): string {
  const nounPhrase = () =>
    pick(NOUN_PHRASES)
      .split(' ')
      .map((t) => (t === 'J,' ? `${pick(ADJECTIVES)},` : t === 'J' ? pick(ADJECTIVES) : t === 'D' ? pick(ADVERBS) : pick(NOUNS)))
      .join(' ');
  const verbPhrase = () =>
    pick(VERB_PHRASES)
      .split(' ')
      .map((t) => (t === 'X' ? pick(AUXILIARIES) : t === 'D' ? pick(ADVERBS) : pick(VERBS)))
      .join(' ');
  const words: string[] = [];
  for (const part of pick(GRAMMAR).split(' ')) {
    if (part === 'N') words.push(nounPhrase());
    else if (part === 'V') words.push(verbPhrase());
    else if (part === 'P') words.push(`${pick(PREPOSITIONS)} the ${nounPhrase()}`);
    else words[words.length - 1] += pick(TERMINATORS);
  }
  return words.join(' ');
}

/** At least `bytes` characters of dbgen-style sentences separated by spaces. */
export function buildTextPool(bytes: number, seed = 933588178): string {
  const pick = picker(seededRandom(seed));
  const parts: string[] = [];
  let length = 0;
  while (length < bytes) {
    const s = sentence(pick);
    parts.push(s);
    length += s.length + 1;
  }
  return parts.join(' ');
}

/** `bytes` random letters, digits, spaces and commas: the stuff dbgen makes addresses of. */
export function buildCharPool(bytes: number, seed = 881155353): string {
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ, ';
  const random = seededRandom(seed);
  let out = '';
  for (let i = 0; i < bytes; i++) out += alphabet[Math.floor(random() * alphabet.length)];
  return out;
}
