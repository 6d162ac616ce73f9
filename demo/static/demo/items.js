// The demo's shared list (#items): its rows, the add form and the delete buttons.
// Pages differ only in how they learn of changes; they call itemList.show / .remove.
var itemList = (function ($) {
  function row(pk) {
    return $('#items li').filter(function () { return String($(this).data('id')) === String(pk); });
  }
  function show(pk, text) {
    var li = row(pk);
    if (!li.length) {
      li = $('<li><span class="text"></span> <button class="delete">delete</button></li>').attr('data-id', pk);
      li.find('.delete').attr('data-id', pk);
      $('#items').append(li);
    }
    li.find('.text').text(text);
  }
  function remove(pk) { row(pk).remove(); }

  $('#add-form').on('submit', function (event) {
    event.preventDefault(); post(this); $('#item-text').val('');
  });
  $('#items').on('click', '.delete', function () {
    var form = document.getElementById('delete-form');
    form.elements['delete'].value = $(this).attr('data-id');
    post(form);
  });
  return {show: show, remove: remove};
})(jQuery);
