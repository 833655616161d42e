// htm bound to Preact: html`<p>${text}</p>` builds Preact elements, no build step needed.
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);
