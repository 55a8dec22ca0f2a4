/**
 * What `Client.sendMessage` sends: exactly one kind of content, as an object with one key
 * (`{ text: { body: 'hola' } }`), built by hand or with the helpers below.
 *
 * The core checks every limit (button counts, lengths, the 24-hour window) and rejects
 * with INVALID_ARGUMENT naming the rule; these helpers only shape the request. Enum values
 * are their names (`'MEDIA_KIND_IMAGE'`).
 *
 * @example
 * await client.sendMessage(template('order_shipped', 'es', { body: ['Ana'], urlSuffixes: { 0: 'ORD-1' } }), { to });
 * await client.sendMessage(media.document('https://cdn.example.com/inv.pdf', { filename: 'inv.pdf' }), { to });
 * await client.sendMessage(interactive.buttons('¿Confirmas?', [['yes', 'Sí'], ['no', 'No']]), { to });
 */
import type { ContactCard } from './generated/kapso/gateway/v1/ContactCard';
import type { ContactsContent } from './generated/kapso/gateway/v1/ContactsContent';
import type { InteractiveContent } from './generated/kapso/gateway/v1/InteractiveContent';
import type { InteractiveHeader } from './generated/kapso/gateway/v1/InteractiveHeader';
import type { ListSection } from './generated/kapso/gateway/v1/ListSection';
import type { LocationContent } from './generated/kapso/gateway/v1/LocationContent';
import type { MediaContent } from './generated/kapso/gateway/v1/MediaContent';
import type { MediaKind } from './generated/kapso/gateway/v1/MediaKind';
import type { ReactionContent } from './generated/kapso/gateway/v1/ReactionContent';
import type { ReplyButton } from './generated/kapso/gateway/v1/ReplyButton';
import type { TemplateComponent } from './generated/kapso/gateway/v1/TemplateComponent';
import type { TemplateContent } from './generated/kapso/gateway/v1/TemplateContent';
import type { TemplateCurrency } from './generated/kapso/gateway/v1/TemplateCurrency';
import type { TemplateDateTime } from './generated/kapso/gateway/v1/TemplateDateTime';
import type { TemplateParameter } from './generated/kapso/gateway/v1/TemplateParameter';
import type { TextContent } from './generated/kapso/gateway/v1/TextContent';

/** Each kind of content a send takes, by its field in SendMessageRequest. */
export interface ContentKinds {
  text: TextContent;
  template: TemplateContent;
  media: MediaContent;
  interactive: InteractiveContent;
  reaction: ReactionContent;
  location: LocationContent;
  contacts: ContactsContent;
}

export type ContentKind = keyof ContentKinds;

/** Exactly one kind: `{ media: {...} }`; a second key does not type-check. */
export type Content = {
  [K in ContentKind]: { [P in K]: ContentKinds[K] } & { [P in Exclude<ContentKind, K>]?: never };
}[ContentKind];

const KINDS: readonly ContentKind[] = ['text', 'template', 'media', 'interactive', 'reaction', 'location', 'contacts'];

/** The one kind `content` holds; throws a TypeError (before any call) for anything else. */
export function contentKind(content: Content): ContentKind {
  const present = KINDS.filter((kind) => (content as Record<string, unknown>)?.[kind] != null);
  if (present.length !== 1) {
    throw new TypeError(
      `content must hold exactly one of ${KINDS.join(', ')}; got ${present.length ? present.join(' and ') : 'none'}`,
    );
  }
  return present[0];
}

/** A text of 1 to 4096 characters; `previewUrl` renders its first link. */
export function text(body: string, previewUrl = false): { text: TextContent } {
  return { text: { body, preview_url: previewUrl } };
}

/** Media by public HTTPS link (a string) or by an uploaded media id. */
export type MediaSource = string | { id: string };

function mediaContent(kind: MediaKind, source: MediaSource, extra: Partial<MediaContent>): { media: MediaContent } {
  const where = typeof source === 'string' ? { link: source } : { id: source.id };
  return { media: { kind, ...where, ...extra } };
}

/** Images, videos, audio, documents and stickers. */
export const media = {
  image: (source: MediaSource, options: { caption?: string } = {}) => mediaContent('MEDIA_KIND_IMAGE', source, options),
  video: (source: MediaSource, options: { caption?: string } = {}) => mediaContent('MEDIA_KIND_VIDEO', source, options),
  /** `voice: true` sends a voice note (OGG/OPUS). */
  audio: (source: MediaSource, options: { voice?: boolean } = {}) => mediaContent('MEDIA_KIND_AUDIO', source, options),
  document: (source: MediaSource, options: { caption?: string; filename?: string } = {}) =>
    mediaContent('MEDIA_KIND_DOCUMENT', source, options),
  sticker: (source: MediaSource) => mediaContent('MEDIA_KIND_STICKER', source, {}),
};

/** A template variable: a text, a currency or a date-time. */
export type TemplateValue = string | { currency: TemplateCurrency } | { date_time: TemplateDateTime };

export interface TemplateOptions {
  /** A text, or media from {@link media} (image, video, document). */
  header?: string | { media: MediaContent };
  /** Positional `{{1}}`, `{{2}}` values in order, or named ones by name. */
  body?: TemplateValue[] | Record<string, TemplateValue>;
  /** Quick-reply button index -> the payload returned when it is tapped. */
  quickReplies?: Record<number, string>;
  /** URL button index -> the text replacing its `{{1}}`. */
  urlSuffixes?: Record<number, string>;
  /** Any other component, in Meta's shape. */
  components?: TemplateComponent[];
}

function parameter(value: TemplateValue, name?: string): TemplateParameter {
  const named = name === undefined ? {} : { parameter_name: name };
  return typeof value === 'string' ? { ...named, text: value } : { ...named, ...value };
}

function buttons(
  kind: 'TEMPLATE_BUTTON_TYPE_QUICK_REPLY' | 'TEMPLATE_BUTTON_TYPE_URL',
  byIndex: Record<number, string>,
  value: 'payload' | 'text',
): TemplateComponent[] {
  return Object.entries(byIndex)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([index, v]) => ({
      type: 'TEMPLATE_COMPONENT_TYPE_BUTTON',
      button_type: kind,
      index: Number(index),
      parameters: [{ [value]: v }],
    }));
}

/** An approved template: the only kind sent outside the 24-hour window. */
export function template(name: string, language: string, options: TemplateOptions = {}): { template: TemplateContent } {
  const components: TemplateComponent[] = [];
  if (options.header !== undefined) {
    const header = typeof options.header === 'string' ? { text: options.header } : { media: options.header.media };
    components.push({ type: 'TEMPLATE_COMPONENT_TYPE_HEADER', parameters: [header] });
  }
  const body = Array.isArray(options.body)
    ? options.body.map((value) => parameter(value))
    : Object.entries(options.body ?? {}).map(([key, value]) => parameter(value, key));
  if (body.length) components.push({ type: 'TEMPLATE_COMPONENT_TYPE_BODY', parameters: body });
  components.push(...buttons('TEMPLATE_BUTTON_TYPE_QUICK_REPLY', options.quickReplies ?? {}, 'payload'));
  components.push(...buttons('TEMPLATE_BUTTON_TYPE_URL', options.urlSuffixes ?? {}, 'text'));
  components.push(...(options.components ?? []));
  return { template: { name, language, components } };
}

export interface InteractiveOptions {
  /** A text, or (not for lists) media from {@link media}. */
  header?: string | { media: MediaContent };
  footer?: string;
}

function interactiveContent(
  body: string,
  options: InteractiveOptions,
  action: Partial<InteractiveContent>,
): { interactive: InteractiveContent } {
  let header: InteractiveHeader | undefined;
  if (typeof options.header === 'string') header = { text: options.header };
  else if (options.header) header = { media: options.header.media };
  return { interactive: { body, footer: options.footer ?? '', ...(header ? { header } : {}), ...action } };
}

/** Reply buttons, a list or a call-to-action URL. */
export const interactive = {
  /** Up to 3 reply buttons, each `[id, title]` or `{ id, title }`; the id comes back in the reply. */
  buttons: (body: string, replies: Array<[string, string] | ReplyButton>, options: InteractiveOptions = {}) =>
    interactiveContent(body, options, {
      buttons: { buttons: replies.map((b) => (Array.isArray(b) ? { id: b[0], title: b[1] } : b)) },
    }),
  /** A list opened by the button labelled `button`; each row's id comes back in the reply. */
  list: (body: string, button: string, sections: ListSection[], options: { header?: string; footer?: string } = {}) =>
    interactiveContent(body, options, { list: { button, sections } }),
  /** A button that opens `url`. */
  ctaUrl: (body: string, displayText: string, url: string, options: InteractiveOptions = {}) =>
    interactiveContent(body, options, { cta_url: { display_text: displayText, url } }),
};

/** A reaction to the message `messageId`; an empty emoji removes it. */
export function reaction(messageId: string, emoji: string): { reaction: ReactionContent } {
  return { reaction: { message_id: messageId, emoji } };
}

/** A location pin. */
export function location(
  latitude: number,
  longitude: number,
  options: { name?: string; address?: string } = {},
): { location: LocationContent } {
  return { location: { latitude, longitude, ...options } };
}

/** A contact card from the name shown, phone numbers, emails and company. */
export function contact(
  name: string,
  options: { phones?: string[]; emails?: string[]; company?: string } = {},
): ContactCard {
  return {
    name: { formatted_name: name },
    phones: (options.phones ?? []).map((phone) => ({ phone })),
    emails: (options.emails ?? []).map((email) => ({ email })),
    ...(options.company ? { org: { company: options.company } } : {}),
  };
}

/** One or more contact cards ({@link contact}, or Meta's full card shape). */
export function contacts(...cards: ContactCard[]): { contacts: ContactsContent } {
  return { contacts: { contacts: cards } };
}
