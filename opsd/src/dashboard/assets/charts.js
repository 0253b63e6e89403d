// opsd's dashboard charts, drawn as SVG without any library: a line chart over time (canary
// against baseline, drill RTO and RPO against their targets) and a range chart (the month's
// spend, its forecast interval and the budget lines). Lines differ by dash as well as colour,
// every chart has a legend in words and a text summary for screen readers.
'use strict';

(function () {
  const SVG = 'http://www.w3.org/2000/svg';
  const WIDTH = 640;
  const HEIGHT = 200;
  const PAD = { left: 56, right: 12, top: 12, bottom: 28 };

  function svgNode(tag, attributes, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function htmlNode(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A readable number: at most three significant digits, no exponent.
  function short(value) {
    if (value === null || value === undefined || Number.isNaN(value)) return '—';
    const size = Math.abs(value);
    if (size >= 100 || Number.isInteger(value)) return String(Math.round(value));
    if (size >= 10) return value.toFixed(1);
    return value.toFixed(2);
  }

  function timeText(seconds) {
    const date = new Date(seconds * 1000);
    return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  // series: [{ name, className, dashed, points: [[x, y or null]] }]; x in Unix seconds.
  // references: [{ value, label }] drawn as horizontal lines (targets, limits).
  function lineChart(options) {
    const series = options.series;
    const references = options.references || [];
    const xs = series.flatMap((line) => line.points.map((point) => point[0]));
    const ys = series.flatMap((line) => line.points.map((point) => point[1]).filter((y) => y !== null && y !== undefined))
      .concat(references.map((line) => line.value));
    const xFrom = options.xFrom !== undefined ? options.xFrom : Math.min(...xs);
    const xTo = options.xTo !== undefined ? options.xTo : Math.max(...xs);
    const yMax = (Math.max(options.yMin || 0, ...ys) || 1) * 1.1;
    const xOf = (x) => PAD.left + (xTo > xFrom ? (x - xFrom) / (xTo - xFrom) : 0.5) * (WIDTH - PAD.left - PAD.right);
    const yOf = (y) => HEIGHT - PAD.bottom - (y / yMax) * (HEIGHT - PAD.top - PAD.bottom);
    const xLabel = options.xLabel || timeText;

    const figure = htmlNode('figure', 'chart');
    if (options.id) figure.id = options.id;
    figure.append(htmlNode('figcaption', null, options.title + (options.unit ? ' (' + options.unit + ')' : '')));
    const summary = series.map((line) => {
      const known = line.points.filter((point) => point[1] !== null && point[1] !== undefined);
      const last = known.length ? known[known.length - 1][1] : null;
      return line.name + ': ' + (last === null ? 'no data' : 'last ' + short(last) + (options.unit ? ' ' + options.unit : ''));
    }).join('; ');
    const svg = svgNode('svg', { viewBox: '0 0 ' + WIDTH + ' ' + HEIGHT, role: 'img', 'aria-label': options.title + '. ' + summary, class: 'chart-svg' });

    // Axes: three value ticks, the span's start and end times.
    for (const fraction of [0, 0.5, 1]) {
      const value = (yMax / 1.1) * fraction;
      const y = yOf(value);
      svg.append(svgNode('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y, y2: y, class: 'grid' }));
      svg.append(svgNode('text', { x: PAD.left - 6, y: y + 4, 'text-anchor': 'end', class: 'tick' }, short(value)));
    }
    svg.append(svgNode('text', { x: PAD.left, y: HEIGHT - 8, class: 'tick' }, xLabel(xFrom)));
    svg.append(svgNode('text', { x: WIDTH - PAD.right, y: HEIGHT - 8, 'text-anchor': 'end', class: 'tick' }, xLabel(xTo)));

    for (const reference of references) {
      const y = yOf(reference.value);
      svg.append(svgNode('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y, y2: y, class: 'reference' }));
      svg.append(svgNode('text', { x: WIDTH - PAD.right, y: y - 4, 'text-anchor': 'end', class: 'reference-label' }, reference.label));
    }

    for (const line of series) {
      // A gap (a bucket without requests) breaks the line instead of drawing a false zero.
      let path = '';
      let drawing = false;
      for (const [x, y] of line.points) {
        if (y === null || y === undefined) { drawing = false; continue; }
        path += (drawing ? 'L' : 'M') + xOf(x).toFixed(1) + ' ' + yOf(y).toFixed(1) + ' ';
        drawing = true;
      }
      const attributes = { d: path.trim() || 'M0 0', class: 'series ' + line.className, 'data-series': line.name, 'data-points': String(line.points.filter((point) => point[1] !== null && point[1] !== undefined).length) };
      if (line.dashed) attributes['stroke-dasharray'] = '6 4';
      svg.append(svgNode('path', attributes));
      if (options.markers) {
        for (const [x, y] of line.points) {
          if (y === null || y === undefined) continue;
          svg.append(svgNode('circle', { cx: xOf(x), cy: yOf(y), r: 3, class: 'marker ' + line.className }));
        }
      }
    }
    figure.append(svg);

    const legend = htmlNode('ul', 'legend');
    for (const line of series) {
      const item = htmlNode('li', 'legend-' + line.className);
      item.append(htmlNode('span', 'swatch ' + line.className + (line.dashed ? ' dashed' : ''), line.dashed ? '╌╌' : '━━'));
      item.append(document.createTextNode(' ' + line.name));
      legend.append(item);
    }
    for (const reference of references) {
      const item = htmlNode('li', 'legend-reference');
      item.append(htmlNode('span', 'swatch reference', '┈┈'), document.createTextNode(' ' + reference.label));
      legend.append(item);
    }
    figure.append(legend);
    return figure;
  }

  // A horizontal scale from 0: bars (what is spent), an interval with its point (the
  // forecast), and vertical lines (budgets).
  function rangeChart(options) {
    const values = options.bars.map((bar) => bar.value)
      .concat(options.interval ? [options.interval.low, options.interval.high || 0, options.interval.point] : [])
      .concat(options.lines.map((line) => line.value));
    const max = Math.max(...values, 1) * 1.1;
    const height = 40 + options.bars.length * 28 + (options.interval ? 28 : 0);
    const left = 90;
    const xOf = (value) => left + (value / max) * (WIDTH - left - PAD.right - 40);
    const figure = htmlNode('figure', 'chart');
    if (options.id) figure.id = options.id;
    figure.append(htmlNode('figcaption', null, options.title));
    const described = options.bars.map((bar) => bar.label + ' ' + options.format(bar.value))
      .concat(options.interval ? ['forecast ' + options.format(options.interval.point) + ' (' + options.format(options.interval.low) + ' to ' + (options.interval.high === null ? 'unbounded' : options.format(options.interval.high)) + ')'] : [])
      .concat(options.lines.map((line) => line.label + ' ' + options.format(line.value))).join('; ');
    const svg = svgNode('svg', { viewBox: '0 0 ' + WIDTH + ' ' + height, role: 'img', 'aria-label': options.title + '. ' + described, class: 'chart-svg range' });
    let y = 12;
    for (const bar of options.bars) {
      svg.append(svgNode('text', { x: left - 6, y: y + 14, 'text-anchor': 'end', class: 'tick' }, bar.label));
      svg.append(svgNode('rect', { x: left, y, width: Math.max(1, xOf(bar.value) - left), height: 18, class: 'bar' }));
      svg.append(svgNode('text', { x: xOf(bar.value) + 4, y: y + 14, class: 'tick' }, options.format(bar.value)));
      y += 28;
    }
    if (options.interval) {
      const interval = options.interval;
      const high = interval.high === null ? max : interval.high;
      svg.append(svgNode('text', { x: left - 6, y: y + 14, 'text-anchor': 'end', class: 'tick' }, 'forecast'));
      svg.append(svgNode('line', { x1: xOf(interval.low), x2: xOf(high), y1: y + 9, y2: y + 9, class: 'interval' + (interval.high === null ? ' open' : '') }));
      svg.append(svgNode('line', { x1: xOf(interval.low), x2: xOf(interval.low), y1: y + 2, y2: y + 16, class: 'interval' }));
      if (interval.high !== null) svg.append(svgNode('line', { x1: xOf(high), x2: xOf(high), y1: y + 2, y2: y + 16, class: 'interval' }));
      svg.append(svgNode('rect', { x: xOf(interval.point) - 5, y: y + 4, width: 10, height: 10, class: 'point', transform: 'rotate(45 ' + xOf(interval.point) + ' ' + (y + 9) + ')' }));
      y += 28;
    }
    for (const line of options.lines) {
      svg.append(svgNode('line', { x1: xOf(line.value), x2: xOf(line.value), y1: 4, y2: y, class: 'reference' }));
      svg.append(svgNode('text', { x: xOf(line.value), y: y + 14, 'text-anchor': 'middle', class: 'reference-label' }, line.label));
    }
    figure.append(svg);
    return figure;
  }

  window.opsdCharts = { lineChart, rangeChart, short };
})();
