// A small Python highlighter that builds DOM nodes (textContent only, never markup).
// It splits code into tokens (comments, strings, numbers, keywords, names, other) with one
// regular expression; each token becomes a text node or a <span class="tok-..."> holding it.
"use strict";
(function () {
  const KEYWORDS = new Set(("False None True and as assert async await break class continue def del elif else " +
    "except finally for from global if import in is lambda nonlocal not or pass raise return try while with " +
    "yield match case").split(" "));
  const BUILTINS = new Set("print len range dict list set tuple str int float bool open sum min max sorted final_answer".split(" "));
  const TOKEN = /(#[^\n]*)|("""[\s\S]*?(?:"""|$)|'''[\s\S]*?(?:'''|$)|[rbfuRBFU]{0,2}"(?:\\.|[^"\\\n])*"?|[rbfuRBFU]{0,2}'(?:\\.|[^'\\\n])*'?)|(\b\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?j?\b)|([A-Za-z_][A-Za-z0-9_]*)/g;
  const MAX_CHARS = 100000;

  function span(cls, text) {
    const el = document.createElement("span");
    el.className = cls;
    el.textContent = text;
    return el;
  }

  // Fill `target` (a <code> element) with `source`, highlighted.
  function highlight(target, source) {
    target.textContent = "";
    let text = String(source);
    let tail = "";
    if (text.length > MAX_CHARS) {
      tail = text.slice(MAX_CHARS);
      text = text.slice(0, MAX_CHARS);
    }
    let last = 0;
    const frag = document.createDocumentFragment();
    for (const m of text.matchAll(TOKEN)) {
      if (m.index > last) frag.appendChild(document.createTextNode(text.slice(last, m.index)));
      const [tok, comment, string, number, name] = m;
      if (comment) frag.appendChild(span("tok-comment", tok));
      else if (string) frag.appendChild(span("tok-string", tok));
      else if (number) frag.appendChild(span("tok-number", tok));
      else if (name && KEYWORDS.has(name)) frag.appendChild(span("tok-keyword", tok));
      else if (name && BUILTINS.has(name)) frag.appendChild(span("tok-builtin", tok));
      else frag.appendChild(document.createTextNode(tok));
      last = m.index + tok.length;
    }
    if (last < text.length) frag.appendChild(document.createTextNode(text.slice(last)));
    if (tail) frag.appendChild(document.createTextNode(tail));
    target.appendChild(frag);
  }

  window.codeactHighlight = highlight;
})();
